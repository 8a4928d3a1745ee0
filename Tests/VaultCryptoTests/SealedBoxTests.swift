import CSodium
import Testing

@testable import VaultCrypto

/// Key slots' public-key wrapping: X25519 key pairs and `crypto_box_seal`.
@Suite("SealedBox and BoxKeyPair")
struct SealedBoxTests {
    /// RFC 7748 §6.1: Alice's and Bob's X25519 key pairs.
    enum RFC7748 {
        static let alicePrivate = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        static let alicePublic = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        static let bobPrivate = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        static let bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    }

    let master = VaultKeys.randomKey()

    @Test func publicKeysMatchRFC7748() throws {
        #expect(try BoxKeyPair.publicKey(of: SecretBytes(copying: RFC7748.alicePrivate)) == RFC7748.alicePublic)
        #expect(try BoxKeyPair.publicKey(of: SecretBytes(copying: RFC7748.bobPrivate)) == RFC7748.bobPublic)
    }

    /// A box built the way libsodium documents `crypto_box_seal` (ephemeral key pair, nonce = BLAKE2b-192 of the
    /// ephemeral and the recipient's public keys, `crypto_box_easy`), here from RFC 7748's fixed keys instead of a
    /// random ephemeral pair, opens with `SealedBox.open` under the format's version byte: the format is
    /// libsodium's, not one of ours.
    @Test func opensABoxComposedFromTheDocumentedConstruction() throws {
        let message = Array("the master key, 32 bytes long!!!".utf8)
        let ephemeralPublic = RFC7748.alicePublic
        let recipientPublic = RFC7748.bobPublic
        var nonce = [UInt8](repeating: 0, count: Int(crypto_box_noncebytes()))
        let both = ephemeralPublic + recipientPublic
        #expect(crypto_generichash(&nonce, nonce.count, both, UInt64(both.count), nil, 0) == 0)
        var box = [UInt8](repeating: 0, count: Int(crypto_box_macbytes()) + message.count)
        #expect(
            crypto_box_easy(&box, message, UInt64(message.count), nonce, recipientPublic, RFC7748.alicePrivate) == 0)
        let sealed = [0x01] + ephemeralPublic + box
        let opened = try SealedBox.open(
            sealed, publicKey: RFC7748.bobPublic, secretKey: SecretBytes(copying: RFC7748.bobPrivate))
        #expect(opened == SecretBytes(copying: message))
        // Alice's own pair does not open what was sealed to Bob.
        #expect(throws: VaultCryptoError.authenticationFailed) {
            _ = try SealedBox.open(
                sealed, publicKey: RFC7748.alicePublic, secretKey: SecretBytes(copying: RFC7748.alicePrivate))
        }
    }

    @Test func roundTripsAndEachSealDiffers() throws {
        let pair = try BoxKeyPair.generate()
        #expect(pair.publicKey.count == 32 && pair.secretKey.count == 32)
        #expect(try BoxKeyPair.publicKey(of: pair.secretKey) == pair.publicKey)
        let a = try SealedBox.seal(master, to: pair.publicKey)
        let b = try SealedBox.seal(master, to: pair.publicKey)
        #expect(a.count == 32 + SealedBox.overhead && SealedBox.overhead == 49)
        #expect(a != b, "the ephemeral key is fresh each time")
        #expect(try SealedBox.open(a, publicKey: pair.publicKey, secretKey: pair.secretKey) == master)
        #expect(try SealedBox.open(b, publicKey: pair.publicKey, secretKey: pair.secretKey) == master)
        #expect(try BoxKeyPair.generate().publicKey != pair.publicKey)
    }

    @Test func anotherPairOrAnotherPublicKeyOpensNothing() throws {
        let pair = try BoxKeyPair.generate()
        let other = try BoxKeyPair.generate()
        let sealed = try SealedBox.seal(master, to: pair.publicKey)
        #expect(throws: VaultCryptoError.authenticationFailed) {
            _ = try SealedBox.open(sealed, publicKey: other.publicKey, secretKey: other.secretKey)
        }
        // The right secret key with a substituted public key fails too: the public key is in the nonce.
        #expect(throws: VaultCryptoError.authenticationFailed) {
            _ = try SealedBox.open(sealed, publicKey: other.publicKey, secretKey: pair.secretKey)
        }
    }

    @Test func everySingleBitFlipAndTruncationIsRejected() throws {
        let pair = try BoxKeyPair.generate()
        let sealed = try SealedBox.seal(master, to: pair.publicKey)
        var accepted: [Int] = []
        for index in sealed.indices {
            for bit in 0..<8 {
                var tampered = sealed
                tampered[index] ^= 1 << bit
                do {
                    _ = try SealedBox.open(tampered, publicKey: pair.publicKey, secretKey: pair.secretKey)
                    accepted.append(index * 8 + bit)
                } catch VaultCryptoError.authenticationFailed {
                } catch VaultCryptoError.malformed {
                    #expect(index == 0, "only the version byte should read as malformed")
                }
            }
        }
        #expect(accepted.isEmpty, "tampered boxes opened at bits \(accepted)")
        for length in 0..<sealed.count {
            #expect(throws: (any Error).self, "truncated to \(length)") {
                _ = try SealedBox.open(
                    Array(sealed.prefix(length)), publicKey: pair.publicKey, secretKey: pair.secretKey)
            }
        }
    }

    @Test func malformedPublicKeysAreRefused() throws {
        #expect(throws: VaultCryptoError.self) { _ = try SealedBox.seal(master, to: [1, 2, 3]) }
        // A key of small order cannot be sealed to (libsodium refuses it).
        #expect(throws: VaultCryptoError.self) { _ = try SealedBox.seal(master, to: [UInt8](repeating: 0, count: 32)) }
        let pair = try BoxKeyPair.generate()
        let sealed = try SealedBox.seal(master, to: pair.publicKey)
        #expect(throws: VaultCryptoError.self) {
            _ = try SealedBox.open(sealed, publicKey: [], secretKey: pair.secretKey)
        }
    }

    /// The key holder wraps its master key for a slot; only that slot's secret key unwraps it.
    @Test func aKeyHolderWrapsItsMasterKeyToAPublicKey() throws {
        let holder = InProcessKeyHolder(masterKey: SecretBytes(copying: master.withUnsafeBytes { Array($0) }))
        let pair = try BoxKeyPair.generate()
        let wrapped = try holder.wrapMasterKey(toPublicKey: pair.publicKey)
        let unwrapped = try SealedBox.open(wrapped, publicKey: pair.publicKey, secretKey: pair.secretKey)
        #expect(unwrapped == master)
        // The unwrapped key is the same key: what the holder sealed opens under it.
        let sealed = try holder.seal(SecretBytes(copying: Array("token".utf8)), label: "account/x")
        #expect(try InProcessKeyHolder(masterKey: unwrapped).open(sealed, label: "account/x").copyToString() == "token")
    }
}

/// The vault's signing key: one pair per seed, and a signature that holds for its message and public key only.
@Suite struct SigningKeyPairTests {
    @Test func theSameSeedGivesTheSamePairAndASignatureBindsMessageAndKey() throws {
        let seed = Random.bytes(32)
        let one = try SigningKeyPair(seed: SecretBytes(copying: seed))
        let again = try SigningKeyPair(seed: SecretBytes(copying: seed))
        let other = try SigningKeyPair(seed: SecretBytes(copying: Random.bytes(32)))
        #expect(one.publicKey == again.publicKey && one.publicKey != other.publicKey)
        let message = Array("old key || new key".utf8)
        let signature = one.sign(message)
        #expect(SigningKeyPair.verify(signature, of: message, publicKey: one.publicKey))
        #expect(!SigningKeyPair.verify(signature, of: message + [0], publicKey: one.publicKey))
        #expect(!SigningKeyPair.verify(signature, of: message, publicKey: other.publicKey))
        var altered = signature
        altered[7] ^= 1
        #expect(!SigningKeyPair.verify(altered, of: message, publicKey: one.publicKey))
        #expect(!SigningKeyPair.verify(Array(signature.dropLast()), of: message, publicKey: one.publicKey))
        #expect(throws: VaultCryptoError.self) { try SigningKeyPair(seed: SecretBytes(copying: Random.bytes(31))) }
    }

    /// RFC 8032 §7.1, TEST 2: the public key of a known secret seed and its signature of one byte.
    @Test func rfc8032TestVector2() throws {
        func hex(_ s: String) -> [UInt8] {
            var out: [UInt8] = []
            var i = s.startIndex
            while i < s.endIndex {
                let j = s.index(i, offsetBy: 2)
                out.append(UInt8(s[i..<j], radix: 16)!)
                i = j
            }
            return out
        }
        let pair = try SigningKeyPair(
            seed: SecretBytes(copying: hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")))
        #expect(pair.publicKey == hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))
        #expect(
            pair.sign([0x72])
                == hex(
                    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
                ))
    }
}
