import Foundation
import VaultCrypto
import VaultStore

/// Where the vault file is: `--vault`, else `TOKENVAULT_VAULT`, else `$XDG_DATA_HOME/tokenvault/vault.db`
/// (`~/.local/share/tokenvault/vault.db`).
enum VaultLocation {
    static func path(option: String?, context: Context) -> String {
        path(option: option, environment: context.environment)
    }

    static func path(option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return absolute(option) }
        if let env = environment["TOKENVAULT_VAULT"], !env.isEmpty { return absolute(env) }
        let dataHome: String
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            dataHome = xdg
        } else {
            dataHome = (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        }
        return dataHome + "/tokenvault/vault.db"
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// A warning when the directory that really holds the vault is writable by group or others: they could add,
    /// replace or hold its `-wal`, `-shm` and lock files (tokenvault refuses a lock directory that is not yours).
    static func sharedDirectoryWarning(vaultPath: String) -> String? {
        let real = AccountLock.realPath(vaultPath) ?? vaultPath
        let directory = URL(fileURLWithPath: real).deletingLastPathComponent().path
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & 0o022 != 0 else { return nil }
        return "tokenvault: warning: the vault's directory \(directory) is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8))): other users can add or replace files beside the vault; keep the vault in a directory only you can write (chmod 700)\n"
    }
}

/// `--verbose`: one line when secret memory could not be locked into RAM (for example under `ulimit -l 0`).
enum MemoryLockReport {
    static func print(context: Context, verbose: Bool) {
        guard verbose, let reason = MemoryLocking.takeUnreportedFailure() else { return }
        context.console.err("tokenvault: warning: could not lock secret memory into RAM (mlock: \(reason)); keys and tokens may be written to swap. Raise the limit ('ulimit -l') to keep them out\n")
    }
}

/// The labels that bind each sealed value to its place and to the plain fields that decide where it is used:
/// a value moved to another row or column, a renamed account, or an integration pointed at another API base or
/// client id opens under another key and fails (exit 7) before anything is sent anywhere.
enum SealLabel {
    static let audit = "audit/chain"

    /// Length-prefixed fields: no choice of values can make two labels alike.
    static func encode(_ fields: [String]) -> String {
        fields.map { "\($0.utf8.count):\($0)" }.joined()
    }

    /// Binds the environment variable too: an `env_var` edited in the file (to `PATH`, say) fails the check.
    static func clientSecret(_ i: Integration) -> String {
        "integration/" + encode([i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI, i.envVar])
    }

    /// The label of vaults written before `env_var` was bound. A secret that opens only under it is re-sealed
    /// under `clientSecret` once (see `UnlockedVault.clientSecret(of:)`).
    static func legacyClientSecret(_ i: Integration) -> String {
        "integration/" + encode([i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI])
    }

    static func accessToken(_ a: Account) -> String {
        "account/" + encode([a.id, "access_token", a.name, a.integrationId])
    }

    static func refreshToken(_ a: Account) -> String {
        "account/" + encode([a.id, "refresh_token", a.name, a.integrationId])
    }
}

/// A vault whose passphrase has been checked: the database plus the master key. The KDF ran once to get here.
final class UnlockedVault: @unchecked Sendable {
    let database: VaultDatabase
    private let masterKey: SecretBytes
    private let auditKey: SecretBytes

    private init(database: VaultDatabase, masterKey: SecretBytes) {
        self.database = database
        self.masterKey = masterKey
        self.auditKey = VaultKeys.subkey(of: masterKey, label: SealLabel.audit)
    }

    /// Checks the stored KDF parameters before running the KDF, then unwraps the master key.
    /// A failed unwrap is the proof of a wrong passphrase; nothing is written.
    ///
    /// The parameters are plain fields and nothing secret can be checked before the KDF runs, so: tokenvault only
    /// ever writes the costs of its known levels (`context.kdfParameters`), and any other cost is an edited file,
    /// refused without running the KDF. A swap between two known levels is caught after a failed unwrap by trying
    /// the cheaper levels with the same salt: if one opens the master key, the file was edited. (A level lowered
    /// by an edit cannot be told from a wrong passphrase without paying for every dearer level on each typo.)
    static func unlock(_ database: VaultDatabase, source: PassphraseSource, context: Context) throws -> UnlockedVault {
        let header = try database.header()
        let parameters = try storedParameters(header)
        let known = knownLevels(context)
        guard let stored = known.first(where: { $0.parameters.sameCost(as: parameters) }) else {
            throw CLIError.integrity(
                "the vault's key-derivation parameters were changed: \(describe(parameters)) is not a cost tokenvault writes (\(known.map { "\($0.level.rawValue) \(describe($0.parameters))" }.joined(separator: ", ")))",
                hint: "the vault file was edited or damaged; restore it from a backup (no key derivation was run)")
        }
        // A person at a terminal gets three tries, as with sudo and ssh; a file, a descriptor or the environment
        // says the same thing again, so it fails at once.
        let attempts = source.isTerminal ? 3 : 1
        for attempt in 1... {
            do {
                let passphrase = try source.read(context: context)
                let master = try openMasterKey(header, passphrase: passphrase, parameters: parameters, stored: stored, known: known)
                return UnlockedVault(database: database, masterKey: master)
            } catch let error as CLIError where (error == .wrongPassphrase || error == .emptyPassphrase) && attempt < attempts {
                context.console.err("tokenvault: \(error.localizedDescription); try again (\(attempts - attempt) more attempt\(attempts - attempt == 1 ? "" : "s"))\n")
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }

    /// Unwraps the master key; on a wrong passphrase, tells an edited KDF level apart (see `unlock`).
    private static func openMasterKey(_ header: VaultHeader, passphrase: SecretBytes, parameters: KDFParameters,
                                      stored: (level: KDFParameters.Level, parameters: KDFParameters, cost: Double),
                                      known: [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)]) throws -> SecretBytes {
        do {
            return try openMasterKey(header, passphrase: passphrase, parameters: parameters)
        } catch CLIError.wrongPassphrase {
            for cheaper in known where cheaper.cost < stored.cost {
                var candidate = cheaper.parameters
                candidate.salt = parameters.salt
                if (try? openMasterKey(header, passphrase: passphrase, parameters: candidate)) != nil {
                    throw CLIError.integrity(
                        "the vault's key-derivation parameters were changed (it opens with the \(cheaper.level.rawValue) level, the file says \(stored.level.rawValue))",
                        hint: "the vault file was edited; restore it from a backup (the passphrase was right; nothing was written)")
                }
            }
            throw CLIError.wrongPassphrase
        }
    }

    private static func openMasterKey(_ header: VaultHeader, passphrase: SecretBytes, parameters: KDFParameters) throws -> SecretBytes {
        let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        let master: SecretBytes
        do {
            master = try SecretBox.open(header.masterKeySealed, key: passphraseKey)
        } catch VaultCryptoError.authenticationFailed {
            throw CLIError.wrongPassphrase
        } catch VaultCryptoError.malformed {
            throw CLIError.integrity("the vault's sealed master key is malformed", hint: "restore the vault from a backup")
        }
        guard master.count == VaultKeys.keyBytes else {
            throw CLIError.integrity("the vault's master key has the wrong length", hint: "restore the vault from a backup")
        }
        return master
    }

    /// The levels tokenvault writes, each cost once (in-process tests may give every level the same cost).
    private static func knownLevels(_ context: Context) -> [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)] {
        var levels: [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)] = []
        for level in KDFParameters.Level.allCases {
            let p = context.kdfParameters(level)
            if levels.contains(where: { $0.parameters.sameCost(as: p) }) { continue }
            levels.append((level, p, Double(p.opsLimit) * Double(p.memLimit)))
        }
        return levels
    }

    private static func describe(_ p: KDFParameters) -> String {
        p.memLimit >= 1 << 20 ? "\(p.opsLimit) passes and \(p.memLimit >> 20) MiB" : "\(p.opsLimit) passes and \(p.memLimit >> 10) KiB"
    }

    static func storedParameters(_ header: VaultHeader) throws -> KDFParameters {
        guard header.kdfAlgorithm == KDFParameters.algorithmName else { throw CLIError.unsupportedKDF(header.kdfAlgorithm) }
        let parameters = KDFParameters(opsLimit: header.kdfOpsLimit, memLimit: header.kdfMemLimit, salt: header.kdfSalt)
        try parameters.validate()
        return parameters
    }

    /// A new vault's header: a random master key sealed under the passphrase key, and the keyed MAC of the
    /// empty audit log's head (entry 0), so that a log emptied later is not mistaken for a new one.
    static func newHeader(passphrase: SecretBytes, parameters: KDFParameters, now: Date) throws -> (header: VaultHeader, auditHeadMAC: [UInt8]) {
        let master = VaultKeys.randomKey()
        let header = try header(sealing: master, passphrase: passphrase, parameters: parameters, createdAt: now, now: now)
        let auditKey = VaultKeys.subkey(of: master, label: SealLabel.audit)
        return (header, auditHeadMAC(key: auditKey, seq: 0, entryMAC: []))
    }

    static func header(sealing master: SecretBytes, passphrase: SecretBytes, parameters: KDFParameters,
                       createdAt: Date, now: Date) throws -> VaultHeader {
        let key = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        return VaultHeader(
            kdfAlgorithm: KDFParameters.algorithmName, kdfSalt: parameters.salt, kdfOpsLimit: parameters.opsLimit,
            kdfMemLimit: parameters.memLimit, masterKeySealed: try SecretBox.seal(master, key: key),
            createdAt: createdAt, passphraseChangedAt: now)
    }

    /// Re-seals the master key under a new passphrase: one small write, every other sealed value stays as it is.
    func changePassphrase(to passphrase: SecretBytes, parameters: KDFParameters, now: Date) throws {
        let old = try database.header()
        let new = try Self.header(sealing: masterKey, passphrase: passphrase, parameters: parameters,
                                  createdAt: old.createdAt, now: now)
        try database.write { try $0.updateHeader(new) }
    }

    // MARK: Sealing

    func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8] {
        try SecretBox.seal(plaintext, key: VaultKeys.subkey(of: masterKey, label: label))
    }

    func seal(_ plaintext: String, label: String) throws -> [UInt8] {
        try seal(SecretBytes(copying: Array(plaintext.utf8)), label: label)
    }

    /// Opens a sealed value; a failure names what was damaged, never its content.
    func open(_ sealed: [UInt8], label: String, what: String) throws -> SecretBytes {
        do {
            return try SecretBox.open(sealed, key: VaultKeys.subkey(of: masterKey, label: label))
        } catch let error as VaultCryptoError {
            throw CLIError.integrity("\(what) failed its integrity check (\(error.localizedDescription))",
                                     hint: "the vault was damaged or tampered with; restore it from a backup or authorize again")
        }
    }

    /// The integration's client secret; opening it also checks the plain fields bound to it (env_var included).
    /// A vault written before env_var was bound is re-sealed under the new label the first time, in one short write.
    func clientSecret(of integration: Integration) throws -> SecretBytes {
        let what = "the client secret of integration '\(integration.name)'"
        do {
            return try open(integration.clientSecretSealed, label: SealLabel.clientSecret(integration), what: what)
        } catch {
            let legacyKey = VaultKeys.subkey(of: masterKey, label: SealLabel.legacyClientSecret(integration))
            guard let secret = try? SecretBox.open(integration.clientSecretSealed, key: legacyKey) else { throw error }
            // Bless no name an old vault (or an edit) put there that would change how programs run.
            try EnvExport.checkAllowedAtUse(integration.envVar, integration: integration.name)
            let resealed = try seal(secret, label: SealLabel.clientSecret(integration))
            try database.write { try $0.replaceClientSecret(integrationId: integration.id, old: integration.clientSecretSealed, new: resealed) }
            return secret
        }
    }

    /// The variable the integration's access token is exported as, after checking that it is the one sealed with the
    /// integration (an edited env_var fails, exit 7) and that it is not a name that changes how programs run.
    func environmentVariable(of integration: Integration) throws -> String {
        _ = try clientSecret(of: integration)
        try EnvExport.checkAllowedAtUse(integration.envVar, integration: integration.name)
        return integration.envVar
    }

    func accessToken(of account: Account) throws -> SecretBytes {
        guard let sealed = account.accessTokenSealed else { throw CLIError.noTokens(account: account.name) }
        return try open(sealed, label: SealLabel.accessToken(account), what: "the access token of account '\(account.name)'")
    }

    func refreshToken(of account: Account) throws -> SecretBytes {
        guard let sealed = account.refreshTokenSealed else { throw CLIError.noTokens(account: account.name) }
        return try open(sealed, label: SealLabel.refreshToken(account), what: "the refresh token of account '\(account.name)'")
    }

    // MARK: Audit log

    /// Appends an entry chained to the previous one, inside the caller's transaction.
    @discardableResult
    func appendAudit(_ draft: AuditDraft, in writer: VaultWriter) throws -> AuditEntry {
        let auditKey = auditKey
        return try writer.appendAudit(draft, mac: { seq, entry, previous in
            MAC.hmacSHA256(key: auditKey, message: AuditEntry.canonicalBytes(seq: seq, draft: entry, previousMAC: previous))
        }, headMAC: { seq, entryMAC in Self.auditHeadMAC(key: auditKey, seq: seq, entryMAC: entryMAC) })
    }

    /// The head record's MAC: which entry is the newest (entry 0 for an empty log) and that entry's MAC.
    static func auditHeadMAC(key: SecretBytes, seq: Int64, entryMAC: [UInt8]) -> [UInt8] {
        MAC.hmacSHA256(key: key, message: Array("tokenvault-audit-head-v1:\(seq):".utf8) + entryMAC)
    }

    /// What `audit --verify` found.
    struct AuditVerification {
        var problems: [String]
        var count: Int
        /// The head MAC as stored (hex), to keep outside the vault and pass back as `--expect-head`.
        var head: String
        var headSeq: Int64
    }

    /// Walks the chain from the first entry: an edited, reordered or deleted entry breaks it; so does a head
    /// record that does not name the newest entry with a valid MAC (entry 0 included: an emptied log is caught),
    /// and any `tamper-detected` entry tokenvault wrote when it found the head wrong. With `expectHead`, the
    /// log must also still contain that head (a head printed earlier and kept elsewhere): a vault rolled back to
    /// an older copy does not.
    func verifyAudit(expectHead: String? = nil) throws -> AuditVerification {
        var previous: [UInt8] = []
        var expectedSeq: Int64 = 1
        var problems: [String] = []
        let entries = try database.auditEntries()
        var heads: Set<String> = [Self.hex(Self.auditHeadMAC(key: auditKey, seq: 0, entryMAC: []))]
        for entry in entries {
            if entry.seq != expectedSeq {
                problems.append("entry \(expectedSeq)\(entry.seq > expectedSeq + 1 ? "-\(entry.seq - 1)" : "") is missing")
            }
            let mac = MAC.hmacSHA256(key: auditKey, message: AuditEntry.canonicalBytes(seq: entry.seq, draft: entry.draft, previousMAC: previous))
            if !MAC.constantTimeEqual(mac, entry.mac) {
                problems.append("entry \(entry.seq) (\(entry.draft.event.rawValue), account '\(entry.draft.account)') does not match its MAC: edited, reordered, or an earlier entry was removed")
            } else if entry.draft.event == .tamperDetected {
                problems.append("entry \(entry.seq): tokenvault found the log tampered with before it appended this entry (\(entry.draft.detail ?? entry.draft.outcome))")
            }
            heads.insert(Self.hex(Self.auditHeadMAC(key: auditKey, seq: entry.seq, entryMAC: entry.mac)))
            // Continue from the stored MAC so one bad entry is reported once, not as a cascade.
            previous = entry.mac
            expectedSeq = entry.seq + 1
        }
        // The head in the header row must name the newest entry (or entry 0) with a valid MAC: otherwise the
        // newest entries, or all of them, were removed.
        let head = try database.auditHead()
        let newest = entries.last
        if head.mac.isEmpty {
            problems.append("the log's head record has no MAC: it was removed (an emptied or truncated log looks like this)")
        } else if head.seq != (newest?.seq ?? 0) {
            problems.append("the log ends at entry \(newest?.seq ?? 0) but entry \(head.seq) was written: the newest entries were removed")
        } else if !MAC.constantTimeEqual(Self.auditHeadMAC(key: auditKey, seq: newest?.seq ?? 0, entryMAC: newest?.mac ?? []), head.mac) {
            problems.append(newest == nil
                ? "the log is empty but its head record does not match an empty log: its entries were removed"
                : "the log's head record does not match entry \(newest!.seq)")
        }
        if let expectHead {
            let wanted = expectHead.lowercased().trimmingCharacters(in: .whitespaces)
            if !heads.contains(wanted) {
                problems.append("the head you kept (\(wanted.prefix(16))…) is not in this log: the vault was rolled back to an older copy, replaced, or the head belongs to another vault")
            }
        }
        return AuditVerification(problems: problems, count: entries.count, head: Self.hex(head.mac), headSeq: head.seq)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}
