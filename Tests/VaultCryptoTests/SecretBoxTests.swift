import Testing

@testable import VaultCrypto

@Suite("SecretBox: round trip and tampering")
struct SecretBoxTests {
    let key = VaultKeys.randomKey()
    let plaintext = Array("ya29.an-access-token".utf8)

    @Test(arguments: [0, 1, 10 * 1024])
    func roundTrip(length: Int) throws {
        let message = Random.bytes(length)
        let sealed = try SecretBox.seal(message, key: key)
        #expect(sealed.count == length + SecretBox.overhead)
        #expect(sealed[0] == 0x01)
        let opened = try SecretBox.open(sealed, key: key)
        #expect(opened == SecretBytes(copying: message))
    }

    @Test func sealingFromSecureMemoryRoundTrips() throws {
        let secret = SecretBytes(copying: plaintext)
        let opened = try SecretBox.open(try SecretBox.seal(secret, key: key), key: key)
        #expect(opened == secret)
    }

    @Test func twoSealsOfTheSameValueDiffer() throws {
        let a = try SecretBox.seal(plaintext, key: key)
        let b = try SecretBox.seal(plaintext, key: key)
        #expect(a != b)
        #expect(a[1..<(1 + 24)] != b[1..<(1 + 24)], "nonces must differ")
    }

    @Test func everySingleBitFlipIsRejected() throws {
        let sealed = try SecretBox.seal(plaintext, key: key)
        var accepted: [(byte: Int, bit: Int)] = []
        for index in sealed.indices {
            for bit in 0..<8 {
                var tampered = sealed
                tampered[index] ^= 1 << bit
                do {
                    _ = try SecretBox.open(tampered, key: key)
                    accepted.append((index, bit))
                } catch VaultCryptoError.authenticationFailed {
                } catch VaultCryptoError.malformed {
                    #expect(index == 0, "only the version byte should read as malformed")
                }
            }
        }
        #expect(accepted.isEmpty, "tampered values opened: \(accepted)")
    }

    @Test func everyTruncationIsRejected() throws {
        let sealed = try SecretBox.seal(plaintext, key: key)
        for length in 0..<sealed.count {
            #expect(throws: (any Error).self, "truncated to \(length)") {
                _ = try SecretBox.open(Array(sealed.prefix(length)), key: key)
            }
            if length < SecretBox.overhead {
                #expect(
                    throws: VaultCryptoError.malformed(
                        "sealed value is \(length) bytes, shorter than the minimum \(SecretBox.overhead)")
                ) {
                    _ = try SecretBox.open(Array(sealed.prefix(length)), key: key)
                }
            } else {
                #expect(throws: VaultCryptoError.authenticationFailed) {
                    _ = try SecretBox.open(Array(sealed.prefix(length)), key: key)
                }
            }
        }
    }

    @Test func unknownVersionIsMalformed() throws {
        var sealed = try SecretBox.seal(plaintext, key: key)
        sealed[0] = 0x02
        let error = #expect(throws: VaultCryptoError.self) { _ = try SecretBox.open(sealed, key: key) }
        guard case .malformed(let why)? = error else {
            Issue.record("expected .malformed, got \(String(describing: error))")
            return
        }
        #expect(why.contains("version 2"))
    }

    @Test func wrongKeyFails() throws {
        let sealed = try SecretBox.seal(plaintext, key: key)
        #expect(throws: VaultCryptoError.authenticationFailed) {
            _ = try SecretBox.open(sealed, key: VaultKeys.randomKey())
        }
    }

    @Test func valueMovedToAnotherPlaceFails() throws {
        let master = VaultKeys.randomKey()
        let here = VaultKeys.subkey(of: master, label: "account/A/access_token")
        let there = VaultKeys.subkey(of: master, label: "account/A/refresh_token")
        let sealed = try SecretBox.seal(plaintext, key: here)
        #expect(
            try SecretBox.open(sealed, key: VaultKeys.subkey(of: master, label: "account/A/access_token"))
                == SecretBytes(copying: plaintext))
        #expect(throws: VaultCryptoError.authenticationFailed) {
            _ = try SecretBox.open(sealed, key: there)
        }
    }
}
