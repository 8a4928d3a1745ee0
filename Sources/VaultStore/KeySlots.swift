import Foundation

/// One passphrase's way to the master key (schema v4): its own Argon2id salt and cost, and the master key wrapped
/// under the key that passphrase derives. A vault has at least one; v1-v3 vaults have exactly one, named `main`.
///
/// Two forms. `publicKey == nil`: `masterKeySealed` is the master key sealed (secretbox) under the passphrase's
/// key, as in v1-v3. Otherwise `masterKeySealed` is a sealed box to `publicKey` and `secretKeySealed` the slot's
/// secret key sealed under the passphrase's key, so a new master key can be wrapped for every slot without knowing
/// their passphrases (`keys rotate`).
public struct KeySlot: Sendable, Equatable {
    public var name: String
    public var kdfAlgorithm: String
    public var kdfSalt: [UInt8]
    public var kdfOpsLimit: UInt64
    public var kdfMemLimit: UInt64
    public var publicKey: [UInt8]?
    public var secretKeySealed: [UInt8]?
    public var masterKeySealed: [UInt8]
    public var createdAt: Date
    public var changedAt: Date

    public init(
        name: String, kdfAlgorithm: String, kdfSalt: [UInt8], kdfOpsLimit: UInt64, kdfMemLimit: UInt64,
        publicKey: [UInt8]? = nil, secretKeySealed: [UInt8]? = nil, masterKeySealed: [UInt8],
        createdAt: Date, changedAt: Date
    ) {
        self.name = name
        self.kdfAlgorithm = kdfAlgorithm
        self.kdfSalt = kdfSalt
        self.kdfOpsLimit = kdfOpsLimit
        self.kdfMemLimit = kdfMemLimit
        self.publicKey = publicKey
        self.secretKeySealed = secretKeySealed
        self.masterKeySealed = masterKeySealed
        self.createdAt = createdAt
        self.changedAt = changedAt
    }
}

/// The last event `--notify` told about for one account (schema v3's `notification` row).
public struct NotificationRecord: Sendable, Equatable {
    public var account: String
    public var event: String
    public var at: Date

    public init(account: String, event: String, at: Date) {
        self.account = account
        self.event = event
        self.at = at
    }
}

/// Everything a vault holds, sealed bytes as they are, read in one transaction: what `tokenvault copy` moves
/// between stores without opening a secret. Ids, audit sequence numbers, MACs and the head are kept, so the copy
/// opens with the same passphrases and `audit --verify` passes on it.
public struct VaultSnapshot: Sendable, Equatable {
    public var header: VaultHeader
    public var auditHeadSeq: Int64
    public var auditHeadMAC: [UInt8]?
    public var keySlots: [KeySlot]
    public var integrations: [Integration]
    public var accounts: [Account]
    public var auditEntries: [AuditEntry]
    public var notifications: [NotificationRecord]

    public init(
        header: VaultHeader, auditHeadSeq: Int64, auditHeadMAC: [UInt8]?, keySlots: [KeySlot],
        integrations: [Integration], accounts: [Account], auditEntries: [AuditEntry],
        notifications: [NotificationRecord]
    ) {
        self.header = header
        self.auditHeadSeq = auditHeadSeq
        self.auditHeadMAC = auditHeadMAC
        self.keySlots = keySlots
        self.integrations = integrations
        self.accounts = accounts
        self.auditEntries = auditEntries
        self.notifications = notifications
    }
}
