import Testing

@testable import VaultCrypto

@Suite("Passphrase KDF")
struct KDFTests {
    /// The cheapest parameters libsodium accepts (1 pass, 8 KiB), so these tests stay fast.
    static func cheap(salt: [UInt8] = [UInt8](repeating: 7, count: 16)) -> KDFParameters {
        KDFParameters(opsLimit: KDFParameters.opsLimitMin, memLimit: KDFParameters.memLimitMin, salt: salt)
    }

    let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))

    static let refused: [(String, KDFParameters)] = [
        ("salt 15 bytes", KDFParameters(opsLimit: 1, memLimit: 8192, salt: [UInt8](repeating: 1, count: 15))),
        ("salt 17 bytes", KDFParameters(opsLimit: 1, memLimit: 8192, salt: [UInt8](repeating: 1, count: 17))),
        ("empty salt", KDFParameters(opsLimit: 1, memLimit: 8192, salt: [])),
        ("opsLimit 0", KDFParameters(opsLimit: 0, memLimit: 8192, salt: [UInt8](repeating: 1, count: 16))),
        ("opsLimit 1000", KDFParameters(opsLimit: 1000, memLimit: 8192, salt: [UInt8](repeating: 1, count: 16))),
        ("memLimit 64 GiB", KDFParameters(opsLimit: 1, memLimit: 64 << 30, salt: [UInt8](repeating: 1, count: 16))),
        ("memLimit 4 KiB", KDFParameters(opsLimit: 1, memLimit: 4096, salt: [UInt8](repeating: 1, count: 16))),
    ]

    @Test(arguments: refused)
    func refusesUnsafeParametersBeforeRunning(_ name: String, _ parameters: KDFParameters) throws {
        let validationError = #expect(throws: VaultCryptoError.self, "\(name)") { try parameters.validate() }
        guard case .unsafeKDFParameters(let why)? = validationError else {
            Issue.record("\(name): expected .unsafeKDFParameters, got \(String(describing: validationError))")
            return
        }
        #expect(!why.isEmpty)

        // Through the public entry point too. Had crypto_pwhash run, opsLimit 0 would come back as
        // .kdfFailed, opsLimit 1000 would succeed, and 64 GiB would fail or take very long; only
        // validate() throws .unsafeKDFParameters, and it returns at once.
        let clock = ContinuousClock()
        let started = clock.now
        #expect(throws: VaultCryptoError.unsafeKDFParameters(why)) {
            _ = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        }
        // Generous bound so a loaded 2-core CI box does not flake; the error case above is the real proof.
        #expect(clock.now - started < .seconds(1), "\(name): refusal should not run the KDF")
    }

    @Test(arguments: KDFParameters.Level.allCases)
    func freshParametersAreAcceptedAndSalted(_ level: KDFParameters.Level) throws {
        let a = KDFParameters.fresh(level)
        let b = KDFParameters.fresh(level)
        try a.validate()
        #expect(a.salt.count == 16)
        #expect(a.salt != b.salt)
        #expect(a.opsLimit == b.opsLimit && a.memLimit == b.memLimit)
    }

    @Test func freshLevelsAreLibsodiumPresets() {
        #expect(KDFParameters.fresh(.interactive).opsLimit == 2)
        #expect(KDFParameters.fresh(.interactive).memLimit == 64 << 20)
        #expect(KDFParameters.fresh(.moderate).opsLimit == 3)
        #expect(KDFParameters.fresh(.moderate).memLimit == 256 << 20)
        #expect(KDFParameters.fresh(.sensitive).opsLimit == 4)
        #expect(KDFParameters.fresh(.sensitive).memLimit == 1 << 30)
    }

    @Test func deriveIsDeterministic() throws {
        let parameters = Self.cheap()
        let a = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        let b = try VaultKeys.derivePassphraseKey(
            SecretBytes(copying: Array("correct horse battery staple".utf8)), parameters: parameters)
        #expect(a.count == 32)
        #expect(a == b)
    }

    @Test func deriveDependsOnSaltPassphraseAndCost() throws {
        let base = try VaultKeys.derivePassphraseKey(passphrase, parameters: Self.cheap())
        let otherSalt = try VaultKeys.derivePassphraseKey(
            passphrase, parameters: Self.cheap(salt: [UInt8](repeating: 8, count: 16)))
        let otherPassphrase = try VaultKeys.derivePassphraseKey(
            SecretBytes(copying: Array("correct horse battery stapler".utf8)), parameters: Self.cheap())
        var moreOps = Self.cheap()
        moreOps.opsLimit += 1
        let otherCost = try VaultKeys.derivePassphraseKey(passphrase, parameters: moreOps)
        #expect(base != otherSalt)
        #expect(base != otherPassphrase)
        #expect(base != otherCost)
    }

    @Test func interactiveLevelDerives() throws {
        let parameters = KDFParameters.fresh(.interactive)
        let key = try VaultKeys.derivePassphraseKey(passphrase, parameters: parameters)
        #expect(key.count == 32)
        #expect(key != SecretBytes(count: 32))
    }

    @Test func algorithmIsNamed() {
        #expect(KDFParameters.algorithmName == "argon2id13")
    }
}
