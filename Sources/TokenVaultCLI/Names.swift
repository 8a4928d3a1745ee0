import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

/// Names of integrations, accounts and key slots, checked where they are created: the store's rule
/// (``StoredName``), which every name read back must obey too.
enum Names {
    static func check(_ name: String, what: String) throws {
        guard StoredName.isValid(name) else {
            throw CLIError.usage("invalid \(what) name \(Format.quoted(name))", hint: "use \(StoredName.rule)")
        }
    }
}
