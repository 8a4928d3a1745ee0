import Foundation
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
        "integration/" + encode([i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI, i.envVar]
                                + (i.providerOptions.map { ["provider_options", $0] } ?? []))
    }

    /// The label of vaults written before `env_var` was bound. A secret that opens only under it is re-sealed
    /// under `clientSecret` once (see `UnlockedVault.clientSecret(of:)`).
    public static func legacyClientSecret(_ i: Integration) -> String {
        "integration/" + encode([i.id, "client_secret", i.name, i.provider, i.clientId, i.apiBase, i.redirectURI])
    }

    public static func accessToken(_ a: Account) -> String {
        "account/" + encode([a.id, "access_token", a.name, a.integrationId])
    }

    public static func refreshToken(_ a: Account) -> String {
        "account/" + encode([a.id, "refresh_token", a.name, a.integrationId])
    }
}

/// A vault whose passphrase has been checked: the database plus the master key. The KDF ran once to get here.
public final class UnlockedVault: @unchecked Sendable {
    public let database: any VaultStorage
    /// Seals, opens and MACs under labels; the only holder of the master key (KeyHolder.swift).
    public let keys: any KeyHolder

    public init(database: any VaultStorage, keys: any KeyHolder) {
        self.database = database
        self.keys = keys
    }

    /// Checks the stored KDF parameters before running the KDF, then unwraps the master key.
    /// A failed unwrap is the proof of a wrong passphrase; nothing is written.
    ///
    /// The parameters are plain fields and nothing secret can be checked before the KDF runs, so: tokenvault only
    /// ever writes the costs of its known levels (`kdfParameters`), and any other cost is an edited file,
    /// refused without running the KDF. A swap between two known levels is caught after a failed unwrap by trying
    /// the cheaper levels with the same salt: if one opens the master key, the file was edited. (A level lowered
    /// by an edit cannot be told from a wrong passphrase without paying for every dearer level on each typo.)
    ///
    /// `attempts` tries are given to `readPassphrase` (three for a person at a terminal, as with sudo and ssh); each
    /// wrong or empty one but the last is reported on `console`.
    public static func unlock(_ database: any VaultStorage, kdfParameters: (KDFParameters.Level) -> KDFParameters,
                              attempts: Int, console: any Console,
                              readPassphrase: () throws -> SecretBytes) throws -> UnlockedVault {
        let header = try database.header()
        let parameters = try storedParameters(header)
        let known = knownLevels(kdfParameters)
        guard let stored = known.first(where: { $0.parameters.sameCost(as: parameters) }) else {
            throw VaultError.integrity(
                "the vault's key-derivation parameters were changed: \(describe(parameters)) is not a cost tokenvault writes (\(known.map { "\($0.level.rawValue) \(describe($0.parameters))" }.joined(separator: ", ")))",
                hint: "the vault file was edited or damaged; restore it from a backup (no key derivation was run)")
        }
        for attempt in 1... {
            do {
                let passphrase = try readPassphrase()
                let master = try openMasterKey(header, passphrase: passphrase, parameters: parameters, stored: stored, known: known)
                return UnlockedVault(database: database, keys: InProcessKeyHolder(masterKey: master))
            } catch let error as VaultError where (error == .wrongPassphrase || error == .emptyPassphrase) && attempt < attempts {
                console.err("tokenvault: \(error.localizedDescription); try again (\(attempts - attempt) more attempt\(attempts - attempt == 1 ? "" : "s"))\n")
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
        } catch VaultError.wrongPassphrase {
            for cheaper in known where cheaper.cost < stored.cost {
                var candidate = cheaper.parameters
                candidate.salt = parameters.salt
                if (try? openMasterKey(header, passphrase: passphrase, parameters: candidate)) != nil {
                    throw VaultError.integrity(
                        "the vault's key-derivation parameters were changed (it opens with the \(cheaper.level.rawValue) level, the file says \(stored.level.rawValue))",
                        hint: "the vault file was edited; restore it from a backup (the passphrase was right; nothing was written)")
                }
            }
            throw VaultError.wrongPassphrase
        }
    }

    private static func openMasterKey(_ header: VaultHeader, passphrase: SecretBytes, parameters: KDFParameters) throws -> SecretBytes {
        let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        let master: SecretBytes
        do {
            master = try SecretBox.open(header.masterKeySealed, key: passphraseKey)
        } catch VaultCryptoError.authenticationFailed {
            throw VaultError.wrongPassphrase
        } catch VaultCryptoError.malformed {
            throw VaultError.integrity("the vault's sealed master key is malformed", hint: "restore the vault from a backup")
        }
        guard master.count == VaultKeys.keyBytes else {
            throw VaultError.integrity("the vault's master key has the wrong length", hint: "restore the vault from a backup")
        }
        return master
    }

    /// The levels tokenvault writes, each cost once (in-process tests may give every level the same cost).
    private static func knownLevels(_ kdfParameters: (KDFParameters.Level) -> KDFParameters) -> [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)] {
        var levels: [(level: KDFParameters.Level, parameters: KDFParameters, cost: Double)] = []
        for level in KDFParameters.Level.allCases {
            let p = kdfParameters(level)
            if levels.contains(where: { $0.parameters.sameCost(as: p) }) { continue }
            levels.append((level, p, Double(p.opsLimit) * Double(p.memLimit)))
        }
        return levels
    }

    private static func describe(_ p: KDFParameters) -> String {
        p.memLimit >= 1 << 20 ? "\(p.opsLimit) passes and \(p.memLimit >> 20) MiB" : "\(p.opsLimit) passes and \(p.memLimit >> 10) KiB"
    }

    public static func storedParameters(_ header: VaultHeader) throws -> KDFParameters {
        guard header.kdfAlgorithm == KDFParameters.algorithmName else { throw VaultError.unsupportedKDF(header.kdfAlgorithm) }
        let parameters = KDFParameters(opsLimit: header.kdfOpsLimit, memLimit: header.kdfMemLimit, salt: header.kdfSalt)
        try parameters.validate()
        return parameters
    }

    /// A new vault's header: a random master key sealed under the passphrase key, and the keyed MAC of the
    /// empty audit log's head (entry 0), so that a log emptied later is not mistaken for a new one.
    public static func newHeader(passphrase: SecretBytes, parameters: KDFParameters, now: Date) throws -> (header: VaultHeader, auditHeadMAC: [UInt8]) {
        let keys = InProcessKeyHolder.generate()
        let header = try header(sealing: keys, passphrase: passphrase, parameters: parameters, createdAt: now, now: now)
        return (header, try auditHeadMAC(keys: keys, seq: 0, entryMAC: []))
    }

    public static func header(sealing keys: any KeyHolder, passphrase: SecretBytes, parameters: KDFParameters,
                       createdAt: Date, now: Date) throws -> VaultHeader {
        let key = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        return VaultHeader(
            kdfAlgorithm: KDFParameters.algorithmName, kdfSalt: parameters.salt, kdfOpsLimit: parameters.opsLimit,
            kdfMemLimit: parameters.memLimit, masterKeySealed: try keys.wrapMasterKey(under: key),
            createdAt: createdAt, passphraseChangedAt: now)
    }

    /// Re-seals the master key under a new passphrase: one small write, every other sealed value stays as it is.
    public func changePassphrase(to passphrase: SecretBytes, parameters: KDFParameters, now: Date) throws {
        let old = try database.header()
        let new = try Self.header(sealing: keys, passphrase: passphrase, parameters: parameters,
                                  createdAt: old.createdAt, now: now)
        try database.write { try $0.updateHeader(new) }
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
            throw VaultError.integrity("\(what) failed its integrity check (\(error.localizedDescription))",
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
            guard let secret = try? keys.open(integration.clientSecretSealed, label: SealLabel.legacyClientSecret(integration))
            else { throw error }
            // Bless no name an old vault (or an edit) put there that would change how programs run.
            try VariableNames.checkAllowedAtUse(integration.envVar, integration: integration.name)
            let resealed = try seal(secret, label: SealLabel.clientSecret(integration))
            try database.write { try $0.replaceClientSecret(integrationId: integration.id, old: integration.clientSecretSealed, new: resealed) }
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
        return try open(sealed, label: SealLabel.accessToken(account), what: "the access token of account '\(account.name)'")
    }

    public func refreshToken(of account: Account) throws -> SecretBytes {
        guard let sealed = account.refreshTokenSealed else { throw VaultError.noTokens(account: account.name) }
        return try open(sealed, label: SealLabel.refreshToken(account), what: "the refresh token of account '\(account.name)'")
    }
}
