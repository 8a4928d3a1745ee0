import Foundation
import VaultStore

/// What `--notify` has told about each account, so that a state is told once, not at every run: the command
/// records it only after the notify command succeeded, and clears it once the account needs nothing.
public enum NotificationRecord {
    /// `account`'s `event` was told at `at`.
    public static func told(_ account: String, event: String, at: Date, in store: any VaultStorage) throws {
        try store.write { try $0.setNotified(account: account, event: event, at: at) }
    }

    /// `account` needs nothing any more: the next state it gets into is told again.
    public static func cleared(_ account: String, at: Date, in store: any VaultStorage) throws {
        try store.write { try $0.setNotified(account: account, event: nil, at: at) }
    }
}
