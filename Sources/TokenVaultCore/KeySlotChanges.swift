import Foundation
import VaultCrypto
import VaultStore

/// What a key-slot change wrote besides the change itself.
public struct KeySlotChange: Sendable {
    /// The slot the command was opened with, converted from the v1-v3 form in the same write; nil when it was not.
    public var converted: String?
}

/// What `keys rotate` re-sealed and re-wrapped.
public struct KeyRotation: Sendable {
    /// The vault under its new master key.
    public var vault: UnlockedVault
    /// Every key slot, each now holding the new master key.
    public var slots: [String]
    /// The v1-v3 slot the vault was opened with, converted on the way; nil when it was not.
    public var converted: String?
    public var clientSecrets: Int
    public var tokens: Int
    public var auditEntries: Int
}

/// Adding, removing and re-keying key slots, and replacing the master key. Each change is one write transaction
/// that checks first that this command's key is still the vault's, converts the slot the command was opened with
/// when it is of the v1-v3 form, retires the v1-v3 header's envelope, and appends its audit entry. The KDF for a new
/// passphrase runs before the transaction, never inside it.
extension UnlockedVault {
    /// `keys add`: a new slot in the box form for `passphrase`, holding the same master key.
    @discardableResult
    public func addKeySlot(
        named name: String, passphrase: SecretBytes, parameters: KDFParameters, opened: OpenedSlot,
        now: Date
    ) throws -> KeySlotChange {
        let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        let slot = try KeySlots.make(
            named: name, keys: keys, passphraseKey: passphraseKey, parameters: parameters,
            createdAt: now, changedAt: now)
        let conversion = try converted(opened)
        let createdAt = try database.header().createdAt
        return try database.write { w in
            try checkKeyIsCurrent(in: w)
            try w.insert(slot)
            let converted = try replaceIfUnchanged(conversion, opened: opened, in: w)
            try w.updateHeader(.keySlotsOnly(createdAt: createdAt, now: now))
            try appendAudit(
                AuditDraft(
                    at: now, account: "", integration: nil, event: .keySlotAdded, trigger: .keysAdd,
                    outcome: .keySlotChanged(slot: name, change: "added"),
                    detail: Self.slotDetail(parameters, converted: converted)), in: w, keyChecked: true)
            return KeySlotChange(converted: converted)
        }
    }

    /// `keys remove`: the slot goes, unless it is the last one. Its passphrase opens this file no more; it still
    /// opens copies made before, and the master key it opened is unchanged until `keys rotate`.
    @discardableResult
    public func removeKeySlot(named name: String, opened: OpenedSlot, now: Date) throws -> KeySlotChange {
        let conversion = name == opened.name ? nil : try converted(opened)
        let createdAt = try database.header().createdAt
        return try database.write { w in
            try checkKeyIsCurrent(in: w)
            let slots = try w.keySlots()
            guard slots.contains(where: { $0.name == name }) else { throw StoreError.noSuchKeySlot(name) }
            guard slots.count > 1 else {
                throw VaultError.invalid(
                    "key slot '\(name)' is the vault's only one: without it no passphrase would open the vault",
                    hint:
                        "add another first ('tokenvault keys add NAME'), or change its passphrase with 'tokenvault passwd'"
                )
            }
            try w.deleteKeySlot(named: name)
            let converted = try replaceIfUnchanged(conversion, opened: opened, in: w)
            try w.updateHeader(.keySlotsOnly(createdAt: createdAt, now: now))
            try appendAudit(
                AuditDraft(
                    at: now, account: "", integration: nil, event: .keySlotRemoved, trigger: .keysRemove,
                    outcome: .keySlotChanged(slot: name, change: "removed"),
                    detail: converted.map { "key slot '\($0)' converted to the box form" }), in: w, keyChecked: true)
            return KeySlotChange(converted: converted)
        }
    }

    /// `passwd`: the slot `name` (default: the one opened) gets `passphrase`, a new key pair and salt, and
    /// `parameters`' cost (default: its own). No other slot changes, and neither does the master key.
    @discardableResult
    public func changePassphrase(
        ofSlot name: String?, to passphrase: SecretBytes, parameters: KDFParameters?,
        opened: OpenedSlot, now: Date
    ) throws -> KeySlotChange {
        let target = name ?? opened.name
        guard let current = try database.keySlots().first(where: { $0.name == target }) else {
            throw StoreError.noSuchKeySlot(target)
        }
        var cost = parameters ?? KDFParameters(opsLimit: current.kdfOpsLimit, memLimit: current.kdfMemLimit, salt: [])
        cost.salt = Random.bytes(KDFParameters.saltBytes)
        let passphraseKey = try VaultKeys.derivePassphraseKey(passphrase, parameters: cost)
        let slot = try KeySlots.make(
            named: target, keys: keys, passphraseKey: passphraseKey, parameters: cost,
            createdAt: current.createdAt, changedAt: now)
        let conversion = target == opened.name ? nil : try converted(opened)
        let createdAt = try database.header().createdAt
        return try database.write { w in
            try checkKeyIsCurrent(in: w)
            try w.update(slot)
            let converted = try replaceIfUnchanged(conversion, opened: opened, in: w)
            try w.updateHeader(.keySlotsOnly(createdAt: createdAt, now: now))
            try appendAudit(
                AuditDraft(
                    at: now, account: "", integration: nil, event: .passphraseChanged, trigger: .passwd,
                    outcome: .keySlotChanged(slot: target, change: "given a new passphrase"),
                    detail: Self.slotDetail(cost, converted: converted)), in: w, keyChecked: true)
            return KeySlotChange(converted: converted)
        }
    }

    /// `keys rotate`: a new random master key, in one write transaction. First the audit chain must verify under
    /// the current key (a chain re-keyed unverified would bless whatever was done to it). Then every client secret
    /// and token is opened under the current key and sealed under the new one, the new key is wrapped for every
    /// box-form slot whose public key the current key vouches for (the v1-v3 slot the vault was opened with is
    /// converted; any other v1-v3 slot, which only its own passphrase could re-wrap, makes it refuse), the chain and
    /// its head are MAC'd again under the new key, and a `master-key-rotated` entry is appended under it.
    /// `beforeCommit` runs last inside the transaction (tests make it throw: nothing must change).
    public func rotateMasterKey(opened: OpenedSlot, now: Date, beforeCommit: () throws -> Void = {}) throws
        -> KeyRotation
    {
        try Self.checkRotatable(try database.keySlots(), opened: opened)
        let newKeys = InProcessKeyHolder.generate()
        let rotated = UnlockedVault(database: database, keys: newKeys, keySlot: opened.name)
        let createdAt = try database.header().createdAt
        return try database.write { w in
            try checkKeyIsCurrent(in: w)
            let vault = try w.snapshot()
            try Self.checkRotatable(vault.keySlots, opened: opened)

            let chain = try Self.verifyAudit(
                vault.auditEntries, headSeq: vault.auditHeadSeq,
                headMAC: vault.auditHeadMAC ?? [], keys: keys)
            if let first = chain.problems.first {
                throw VaultError.integrity(
                    "the audit log does not verify under the current key (\(first)\(chain.problems.count > 1 ? "; and \(chain.problems.count - 1) more" : "")); the master key was not replaced",
                    hint:
                        "'tokenvault audit --verify' lists the problems; restore the vault from a backup, or create a new vault and authorize its accounts again"
                )
            }

            var slots: [KeySlot] = []
            var converted: String?
            for var slot in vault.keySlots {
                switch slot.form {
                case .legacy:
                    let parameters = try Self.storedParameters(slot)
                    slot = try KeySlots.make(
                        named: slot.name, keys: newKeys, passphraseKey: opened.passphraseKey,
                        parameters: parameters, createdAt: slot.createdAt, changedAt: slot.changedAt)
                    converted = slot.name
                case .box:
                    guard let publicKey = slot.boxPublicKey, try KeySlots.isBound(slot, keys: keys) else {
                        throw VaultError.integrity(
                            "key slot '\(slot.name)': its public key is not bound to it under the vault's key, so the new master key will not be given to it; the master key was not replaced",
                            hint:
                                "someone who could write the vault file may have put it there: remove it with \(Format.command("tokenvault keys remove \(slot.name)")) (add it again with its owner) and rotate again"
                        )
                    }
                    try KeySlots.rewrap(&slot, publicKey: publicKey, keys: keys, newKeys: newKeys)
                }
                slots.append(slot)
            }

            for integration in vault.integrations {
                let secret = try clientSecretForRotation(integration)
                try w.replaceClientSecret(
                    integrationId: integration.id, old: integration.clientSecretSealed,
                    new: try newKeys.seal(secret, label: SealLabel.clientSecret(integration)))
            }
            var tokens = 0
            for var account in vault.accounts {
                if let sealed = account.accessTokenSealed {
                    let label = SealLabel.accessToken(account)
                    account.accessTokenSealed = try newKeys.seal(
                        try open(sealed, label: label, what: "the access token of account '\(account.name)'"),
                        label: label)
                    tokens += 1
                }
                if let sealed = account.refreshTokenSealed {
                    let label = SealLabel.refreshToken(account)
                    account.refreshTokenSealed = try newKeys.seal(
                        try open(sealed, label: label, what: "the refresh token of account '\(account.name)'"),
                        label: label)
                    tokens += 1
                }
                try w.update(account)
            }

            let (macs, headMAC) = try Self.chainMACs(vault.auditEntries, headSeq: vault.auditHeadSeq, keys: newKeys)
            try w.rewriteAuditMACs(macs, headMAC: headMAC)

            for slot in slots { try w.update(slot) }
            try w.updateHeader(.keySlotsOnly(createdAt: createdAt, now: now))
            let secrets = vault.integrations.count
            try rotated.appendAudit(
                AuditDraft(
                    at: now, account: "", integration: nil, event: .masterKeyRotated, trigger: .keysRotate,
                    outcome: .masterKeyReplaced,
                    detail:
                        "re-sealed \(secrets) client secret\(secrets == 1 ? "" : "s") and \(tokens) token\(tokens == 1 ? "" : "s"); the new key wrapped for \(slots.count) key slot\(slots.count == 1 ? "" : "s")\(converted.map { " (slot '\($0)' converted to the box form)" } ?? ""); \(macs.count) audit entr\(macs.count == 1 ? "y" : "ies") re-keyed"
                ),
                in: w)
            try beforeCommit()
            return KeyRotation(
                vault: rotated, slots: slots.map(\.name), converted: converted, clientSecrets: secrets,
                tokens: tokens, auditEntries: macs.count)
        }
    }

    /// Refuses a rotation that would leave a slot without the new master key: a v1-v3 slot other than the one the
    /// vault was opened with (only its own passphrase can wrap a key for it), or the opened one changed meanwhile.
    static func checkRotatable(_ slots: [KeySlot], opened: OpenedSlot) throws {
        for slot in slots where slot.form == .legacy {
            if slot.name == opened.name {
                guard slot == opened.slot else {
                    throw VaultError.busy(
                        "key slot '\(slot.name)' changed while the vault was being opened",
                        hint: "run 'tokenvault keys rotate' again")
                }
                continue
            }
            throw VaultError.invalid(
                "key slot '\(slot.name)' is of the v1-v3 form (the master key sealed under its passphrase alone): 'keys rotate' cannot give it a new master key without that passphrase",
                hint:
                    "open the vault with it once (\(Format.command("tokenvault keys rotate --key-slot \(slot.name)")) converts it and rotates), give it a new passphrase (\(Format.command("tokenvault passwd --slot \(slot.name)"))), or remove it (\(Format.command("tokenvault keys remove \(slot.name)")))"
            )
        }
    }

    /// The client secret opened under its label, or under the label of vaults from before `env_var` was bound (then
    /// re-sealed under today's label, as `clientSecret(of:)` does, without a write of its own).
    private func clientSecretForRotation(_ integration: Integration) throws -> SecretBytes {
        if let secret = try? keys.open(integration.clientSecretSealed, label: SealLabel.clientSecret(integration)) {
            return secret
        }
        if integration.providerOptions == nil,
            let secret = try? keys.open(
                integration.clientSecretSealed, label: SealLabel.legacyClientSecret(integration))
        {
            try VariableNames.checkAllowedAtUse(integration.envVar, integration: integration.name)
            return secret
        }
        throw VaultError.integrity(
            "the client secret of integration '\(integration.name)' failed its integrity check; the master key was not replaced",
            hint:
                "the vault was damaged or tampered with: fix that integration first (\(Format.command("tokenvault integration edit \(integration.name) --client-secret-stdin")), or remove it), or restore the vault from a backup"
        )
    }

    /// The opened slot in the box form when it is of the v1-v3 form (its passphrase's key is at hand); else nil.
    private func converted(_ opened: OpenedSlot) throws -> KeySlot? {
        guard opened.slot.form == .legacy else { return nil }
        return try KeySlots.make(
            named: opened.name, keys: keys, passphraseKey: opened.passphraseKey,
            parameters: try Self.storedParameters(opened.slot),
            createdAt: opened.slot.createdAt, changedAt: opened.slot.changedAt)
    }

    /// Writes `conversion` unless the opened slot changed since it was read (another process got there first).
    private func replaceIfUnchanged(_ conversion: KeySlot?, opened: OpenedSlot, in w: any VaultTransaction) throws
        -> String?
    {
        guard let conversion, try w.keySlots().first(where: { $0.name == opened.name }) == opened.slot else {
            return nil
        }
        try w.update(conversion)
        return conversion.name
    }

    static func slotDetail(_ parameters: KDFParameters, converted: String?) -> String {
        "Argon2id \(describe(parameters))" + (converted.map { "; key slot '\($0)' converted to the box form" } ?? "")
    }
}
