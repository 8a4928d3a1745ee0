import Foundation
import Synchronization
import VaultCrypto
import VaultStore

/// The labels that bind each sealed value to its place and to the plain fields that decide where it is used:
/// a value moved to another row or column, a renamed account, or an integration pointed at another API base or
/// client id opens under another key and fails (exit 7) before anything is sent anywhere.
public enum SealLabel {
    public static let audit = "audit/chain"

    /// Length-prefixed fields: no choice of values can make two labels alike.
    public static func encode(_ fields: [String]) -> String {
        fields.map { "\($0.utf8.count):\($0)" }.joined()
    }

    /// Binds the environment variable too: an `env_var` edited in the file (to `PATH`, say) fails the check.
    /// Binds the provider options too (schema v2), when there are any: an endpoint URL edited in the file fails
    /// the check before the secret or a token is sent there. Without options the label is the one of v1 vaults.
    public static func clientSecret(_ i: Integration) -> String {
        "integration/"
            + encode(
                [i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI, i.envVar]
                    + (i.providerOptions.map { ["provider_options", $0] } ?? []))
    }

    /// The label of vaults written before `env_var` was bound. A secret that opens only under it is re-sealed
    /// under `clientSecret` once (see `UnlockedVault.clientSecret(of:)`).
    public static func legacyClientSecret(_ i: Integration) -> String {
        "integration/" + encode([i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI])
    }

    /// Binds the pair's id too (schema v5), when it has one: a token of an older pair of the same account, put
    /// back in the row beside the current id, opens under another key and fails.
    public static func accessToken(_ a: Account) -> String {
        "account/" + encode([a.id, "access_token", a.name, a.integrationId] + (a.pair.map { ["pair", $0] } ?? []))
    }

    public static func refreshToken(_ a: Account) -> String {
        "account/" + encode([a.id, "refresh_token", a.name, a.integrationId] + (a.pair.map { ["pair", $0] } ?? []))
    }
}

/// A vault whose passphrase has been checked: the database plus the master key. The KDF ran once to get here
/// (once per key slot tried: see `unlock`).
public final class UnlockedVault: Sendable {
    public let database: any VaultStorage
    /// Seals, opens and MACs under labels; the only holder of the master key (KeyHolder.swift).
    public let keys: any KeyHolder
    /// The key slot whose passphrase opened the vault; nil when it was opened otherwise (through the agent).
    public let keySlot: String?
    /// A key slot's stored public key (with its MAC) already found bound under `keys`: see `checkKeyIsCurrent(in:)`.
    private let verifiedPublicKey = Mutex<[UInt8]?>(nil)

    public init(database: any VaultStorage, keys: any KeyHolder, keySlot: String? = nil) {
        self.database = database
        self.keys = keys
        self.keySlot = keySlot
    }

    /// Opens the vault with a passphrase through its key slots, as `unlockSlot` does, keeping only the vault.
    public static func unlock(
        _ database: any VaultStorage, kdfParameters: (KDFParameters.Level) -> KDFParameters,
        attempts: Int, console: any Console, keySlot: String? = nil,
        readPassphrase: () throws -> SecretBytes
    ) throws -> UnlockedVault {
        try unlockSlot(
            database, kdfParameters: kdfParameters, attempts: attempts, console: console, keySlot: keySlot,
            readPassphrase: readPassphrase
        ).vault
    }

    /// Checks the stored KDF parameters of the key slots to try before running any KDF, then unwraps the master key
    /// through the first slot the passphrase opens: only `keySlot` when one is named, else every slot in order (so a
    /// wrong passphrase costs one KDF run per slot). A failed unwrap is the proof of a wrong passphrase; nothing is
    /// written.
    ///
    /// The parameters are plain fields and nothing secret can be checked before the KDF runs, so: tokenvault only
    /// ever writes the costs of its known levels (`kdfParameters`), and any other cost is an edited file,
    /// refused without running the KDF. A swap between two known levels is caught after no slot opened by trying
    /// the cheaper levels with each slot's salt: if one opens, the file was edited. (A level lowered by an edit
    /// cannot be told from a wrong passphrase without paying for every dearer level on each typo.)
    ///
    /// `attempts` tries are given to `readPassphrase` (three for a person at a terminal, as with sudo and ssh); each
    /// wrong or empty one but the last is reported on `console`.
    public static func unlockSlot(
        _ database: any VaultStorage, kdfParameters: (KDFParameters.Level) -> KDFParameters,
        attempts: Int, console: any Console, keySlot: String? = nil,
        readPassphrase: () throws -> SecretBytes
    ) throws -> (vault: UnlockedVault, opened: OpenedSlot) {
        let slots = try database.keySlots()
        guard !slots.isEmpty else {
            throw VaultError.integrity(
                "the vault has no key slot, so no passphrase can open it",
                hint: "the vault file was edited or damaged; restore it from a backup")
        }
        let tried: [KeySlot]
        if let keySlot {
            guard let slot = slots.first(where: { $0.name == keySlot }) else { throw StoreError.noSuchKeySlot(keySlot) }
            tried = [slot]
        } else {
            tried = slots
        }
        let known = knownLevels(kdfParameters)
        let candidates: [SlotCandidate] = try tried.map { slot in
            let parameters = try storedParameters(slot)
            guard let stored = known.first(where: { $0.parameters.sameCost(as: parameters) }) else {
                throw VaultError.integrity(
                    "the vault's key-derivation parameters were changed: key slot '\(slot.name)' has \(describe(parameters)), not a cost tokenvault writes (\(known.map { "\($0.level.rawValue) \(describe($0.parameters))" }.joined(separator: ", ")))",
                    hint: "the vault file was edited or damaged; restore it from a backup (no key derivation was run)")
            }
            return SlotCandidate(slot: slot, parameters: parameters, level: stored.level, cost: stored.cost)
        }
        for attempt in 1... {
            do {
                let passphrase = try readPassphrase()
                let (holder, opened, repinned) = try open(candidates, passphrase: passphrase, known: known)
                if let repinned { repin(repinned, was: opened.slot, in: database) }
                return (UnlockedVault(database: database, keys: holder, keySlot: opened.name), opened)
            } catch let error as VaultError
                where (error == .wrongPassphrase || error == .emptyPassphrase) && attempt < attempts
            {
                console.err(
                    "tokenvault: \(error.localizedDescription); try again (\(attempts - attempt) more attempt\(attempts - attempt == 1 ? "" : "s"))\n"
                )
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }

    /// Stores a slot whose pin now follows the master key it opened (after a `keys rotate`, or a slot from before
    /// slots pinned a key), unless the slot changed since it was read. Best effort: a store this command may not
    /// write (a read-only file, a PostgreSQL role without UPDATE on key_slot) keeps the certificates, which are
    /// checked again at the next opening.
    private static func repin(_ slot: KeySlot, was read: KeySlot, in database: any VaultStorage) {
        _ = try? database.write { w in
            guard try w.keySlots().first(where: { $0.name == slot.name }) == read else { return }
            try w.update(slot)
        }
    }

    private struct SlotCandidate {
        var slot: KeySlot
        var parameters: KDFParameters
        var level: KDFParameters.Level
        var cost: Double
    }

    /// The first candidate the passphrase opens; when none does, tells an edited KDF level apart (see `unlockSlot`).
    private static func open(
        _ candidates: [SlotCandidate], passphrase: SecretBytes,
        known: [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)]
    ) throws -> (InProcessKeyHolder, OpenedSlot, KeySlot?) {
        // A damaged slot does not keep the others from opening; it is reported when none opens (its passphrase
        // may have been the one typed).
        var damage: VaultError?
        for candidate in candidates {
            let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: candidate.parameters)
            do {
                if let opened = try KeySlots.open(candidate.slot, passphraseKey: passphraseKey) {
                    return (
                        opened.keys, OpenedSlot(slot: candidate.slot, passphraseKey: passphraseKey), opened.repinned
                    )
                }
            } catch let error as VaultError {
                damage = damage ?? error
            }
        }
        if let damage { throw damage }
        // Only now, so that a right passphrase for the second slot does not pay for the first one's cheaper levels.
        for candidate in candidates {
            for cheaper in known where cheaper.cost < candidate.cost {
                var parameters = cheaper.parameters
                parameters.salt = candidate.parameters.salt
                let key = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
                if KeySlots.passphraseKeyOpens(candidate.slot, passphraseKey: key) {
                    throw VaultError.integrity(
                        "the vault's key-derivation parameters were changed: key slot '\(candidate.slot.name)' opens with the \(cheaper.level.rawValue) level, the file says \(candidate.level.rawValue)",
                        hint:
                            "the vault file was edited; restore it from a backup (the passphrase was right; nothing was written)"
                    )
                }
            }
        }
        throw VaultError.wrongPassphrase
    }

    /// The levels tokenvault writes, each cost once (in-process tests may give every level the same cost).
    static func knownLevels(_ kdfParameters: (KDFParameters.Level) -> KDFParameters) -> [(
        level: KDFParameters.Level, parameters: KDFParameters, cost: Double
    )] {
        var levels: [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)] = []
        for level in KDFParameters.Level.allCases {
            let p = kdfParameters(level)
            if levels.contains(where: { $0.parameters.sameCost(as: p) }) { continue }
            levels.append((level, p, Double(p.opsLimit) * Double(p.memLimit)))
        }
        return levels
    }

    /// The level whose cost a slot's parameters have, if any (`keys list`).
    public static func level(of slot: KeySlot, kdfParameters: (KDFParameters.Level) -> KDFParameters) -> KDFParameters
        .Level?
    {
        knownLevels(kdfParameters).first {
            $0.parameters.opsLimit == slot.kdfOpsLimit && $0.parameters.memLimit == slot.kdfMemLimit
        }?.level
    }

    static func describe(_ p: KDFParameters) -> String {
        p.memLimit >= 1 << 20
            ? "\(p.opsLimit) passes and \(p.memLimit >> 20) MiB" : "\(p.opsLimit) passes and \(p.memLimit >> 10) KiB"
    }

    /// A slot's KDF parameters, refused when they are of another algorithm or beyond the caps (no KDF run).
    public static func storedParameters(_ slot: KeySlot) throws -> KDFParameters {
        guard slot.kdfAlgorithm == KDFParameters.algorithmName else {
            throw VaultError.unsupportedKDF(slot.kdfAlgorithm)
        }
        let parameters = KDFParameters(opsLimit: slot.kdfOpsLimit, memLimit: slot.kdfMemLimit, salt: slot.kdfSalt)
        try parameters.validate()
        return parameters
    }

    /// Creates a new vault at `location`: a random master key, the key slot `main` (in the box form) for
    /// `passphrase`, and the keyed MAC of the empty audit log's head (entry 0), so that a log emptied later is not
    /// mistaken for a new one. The header's own key columns get ``VaultHeader/keySlotsOnly(createdAt:now:)``.
    public static func create(at location: String, passphrase: SecretBytes, parameters: KDFParameters, now: Date) throws
        -> UnlockedVault
    {
        let keys = InProcessKeyHolder.generate()
        let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        let slot = try KeySlots.make(
            named: KeySlots.firstName, keys: keys, passphraseKey: passphraseKey,
            parameters: parameters, createdAt: now, changedAt: now)
        let database = try VaultStores.create(
            location, header: .keySlotsOnly(createdAt: now, now: now),
            auditHeadMAC: try auditHeadMAC(keys: keys, seq: 0, entryMAC: []))
        try database.write { w in
            // A store whose migration copied the (empty) header into a slot gets the real one instead.
            try w.deleteAllKeySlots()
            try w.insert(slot)
        }
        return UnlockedVault(database: database, keys: keys, keySlot: slot.name)
    }

    /// Throws unless `keys` is still this vault's master key, checked inside the transaction about to write with it:
    /// a command that unlocked before a `keys rotate` in another process committed holds the old key, and what it
    /// sealed or MAC'd now would open for no one (and an audit entry under the old key would break the chain). The
    /// proof is a key slot's public key bound under this key (`keys rotate` binds every slot under the new one).
    /// A vault with only v1-v3 slots has no such binding and cannot have been rotated: nothing to check.
    public func checkKeyIsCurrent(in writer: any VaultTransaction) throws {
        guard let slot = try writer.keySlots().first(where: { $0.form == .box }), let stored = slot.publicKey else {
            return
        }
        if verifiedPublicKey.withLock({ $0 == stored }) { return }
        guard try KeySlots.isBound(slot, keys: keys) else {
            throw VaultError.busy(
                "the vault's master key was replaced ('tokenvault keys rotate') while this command ran; nothing was stored",
                hint: "run the command again; it opens the vault with the new key")
        }
        verifiedPublicKey.withLock { $0 = stored }
    }

    // MARK: Sealing

    public func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8] {
        try keys.seal(plaintext, label: label)
    }

    public func seal(_ plaintext: String, label: String) throws -> [UInt8] {
        try seal(SecretBytes(copying: Array(plaintext.utf8)), label: label)
    }

    /// Opens a sealed value; a failure names what was damaged, never its content.
    public func open(_ sealed: [UInt8], label: String, what: String) throws -> SecretBytes {
        do {
            return try keys.open(sealed, label: label)
        } catch let error as VaultCryptoError {
            throw VaultError.integrity(
                "\(what) failed its integrity check (\(error.localizedDescription))",
                hint: "the vault was damaged or tampered with; restore it from a backup or authorize again")
        }
    }

    /// The integration's client secret; opening it also checks the plain fields bound to it (env_var included).
    /// A vault written before env_var was bound is re-sealed under the new label the first time, in one short write.
    public func clientSecret(of integration: Integration) throws -> SecretBytes {
        let what = "the client secret of integration '\(integration.name)'"
        do {
            return try open(integration.clientSecretSealed, label: SealLabel.clientSecret(integration), what: what)
        } catch {
            // Vaults from before env_var was bound had no provider options either: options next to a legacy seal
            // were put there by an edit, and re-sealing would bless them.
            guard integration.providerOptions == nil else { throw error }
            guard
                let secret = try? keys.open(
                    integration.clientSecretSealed, label: SealLabel.legacyClientSecret(integration))
            else { throw error }
            // Bless no name an old vault (or an edit) put there that would change how programs run.
            try VariableNames.checkAllowedAtUse(integration.envVar, integration: integration.name)
            let resealed = try seal(secret, label: SealLabel.clientSecret(integration))
            try database.write {
                try $0.replaceClientSecret(
                    integrationId: integration.id, old: integration.clientSecretSealed, new: resealed)
            }
            return secret
        }
    }

    /// The variable the integration's access token is exported as, after checking that it is the one sealed with the
    /// integration (an edited env_var fails, exit 7) and that it is not a name that changes how programs run.
    public func environmentVariable(of integration: Integration) throws -> String {
        _ = try clientSecret(of: integration)
        try VariableNames.checkAllowedAtUse(integration.envVar, integration: integration.name)
        return integration.envVar
    }

    public func accessToken(of account: Account) throws -> SecretBytes {
        guard let sealed = account.accessTokenSealed else { throw VaultError.noTokens(account: account.name) }
        try checkPairIsNewest(account)
        return try open(
            sealed, label: SealLabel.accessToken(account), what: "the access token of account '\(account.name)'")
    }

    public func refreshToken(of account: Account) throws -> SecretBytes {
        guard let sealed = account.refreshTokenSealed else { throw VaultError.noTokens(account: account.name) }
        try checkPairIsNewest(account)
        return try open(
            sealed, label: SealLabel.refreshToken(account), what: "the refresh token of account '\(account.name)'")
    }

    /// Throws (exit 7) unless the account's row holds the pair its newest pair-setting audit entry recorded (schema
    /// v5), that entry's MAC checked: a row rolled back to an older pair of the account, or put back after its
    /// revocation, disagrees with the log, which no one without the key can extend. (Entries deleted from the middle of
    /// the log to hide that break the chain: `audit --verify`.) An account whose newest such entry is from before v5
    /// has no id to compare, and neither has its row.
    public func checkPairIsNewest(_ account: Account) throws {
        // The row was read earlier, outside any transaction shared with this read: a refresh in another process may
        // have committed a newer pair and its entry in between. That is a stale read, not tampering, and is told
        // apart by the store's current row, which must then agree with the log. A commit between the two reads here
        // is met by reading both again (a few times: refreshes of one account are serialised by its lock).
        var mismatch: (entry: AuditEntry, current: Account?)?
        for _ in 0..<3 {
            guard let (entry, previousMAC) = try database.newestPairEntry(account: account.name) else {
                guard account.pair == nil else {
                    throw VaultError.integrity(
                        "account '\(account.name)': its stored pair is not one the audit log recorded",
                        hint: Self.rolledBackHint(account.name))
                }
                return
            }
            guard
                MAC.constantTimeEqual(
                    try Self.entryMAC(keys: keys, seq: entry.seq, draft: entry.draft, previousMAC: previousMAC),
                    entry.mac)
            else {
                throw VaultError.integrity(
                    "audit entry \(entry.seq) (account '\(account.name)') fails its MAC check, so the account's stored pair cannot be checked against it",
                    hint:
                        "the vault was tampered with: 'tokenvault audit --verify' lists the problems; restore it from a backup"
                )
            }
            if entry.draft.pair == account.pair ?? "" { return }
            let current = try? database.account(named: account.name)
            guard let current else { return }  // revoked since our read: nothing put back, nothing to refuse
            if current.id == account.id, current.pair != account.pair, entry.draft.pair == current.pair ?? "" {
                return  // our row was read before a newer pair was stored; the store itself is consistent
            }
            mismatch = (entry, current)
            if current.pair == account.pair { break }  // the store still holds this row: no race to wait out
        }
        guard let (entry, _) = mismatch else { return }
        throw VaultError.integrity(
            entry.draft.pair == ""
                ? "account '\(account.name)': its row was put back after audit entry \(entry.seq) removed it"
                : "account '\(account.name)': its row does not hold the pair audit entry \(entry.seq) stored (rolled back to an older copy, or replaced)",
            hint: Self.rolledBackHint(account.name))
    }

    static func rolledBackHint(_ name: String) -> String {
        "someone who can write the vault's store put an older row back; its tokens are not used. Restore the vault from a backup you trust, or run 'tokenvault authorize \(name)' to store a new pair"
    }
}
