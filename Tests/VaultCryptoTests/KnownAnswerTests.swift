import Testing

@testable import VaultCrypto

@Suite("Known-answer vectors")
struct KnownAnswerTests {
    @Test func secretboxMatchesNaClVector() throws {
        let key = SecretBytes(copying: Vectors.SecretBox.key)
        let sealed = try SecretBox.seal(Vectors.SecretBox.plaintext, key: key, nonce: Vectors.SecretBox.nonce)
        #expect(sealed == [0x01] + Vectors.SecretBox.nonce + Vectors.SecretBox.tagAndCiphertext)
        #expect(sealed.count == Vectors.SecretBox.plaintext.count + SecretBox.overhead)

        let opened = try SecretBox.open(sealed, key: key)
        #expect(opened == SecretBytes(copying: Vectors.SecretBox.plaintext))
    }

    @Test(arguments: Vectors.Argon2id.all)
    func argon2idMatchesLibsodiumVector(_ vector: Vectors.Argon2id) throws {
        let parameters = KDFParameters(opsLimit: vector.opsLimit, memLimit: vector.memLimit, salt: vector.salt)
        let output = try VaultKeys.argon2id(
            SecretBytes(copying: vector.passphrase), parameters: parameters, outputLength: vector.expected.count)
        #expect(output == SecretBytes(copying: vector.expected), "\(vector.name)")
        // The public entry point asks for 32 bytes. Argon2's output depends on its length
        // (it is hashed in), so this is not a prefix of the above; it only has to be stable.
        let key = try VaultKeys.derivePassphraseKey(SecretBytes(copying: vector.passphrase), parameters: parameters)
        #expect(key.count == VaultKeys.keyBytes)
    }

    @Test func hmacSHA256MatchesRFC4231() {
        #expect(
            MAC.hmacSHA256(key: SecretBytes(copying: Vectors.HMAC.case1Key), message: Vectors.HMAC.case1Data)
                == Vectors.HMAC.case1Tag)
        #expect(
            MAC.hmacSHA256(key: SecretBytes(copying: Vectors.HMAC.case2Key), message: Vectors.HMAC.case2Data)
                == Vectors.HMAC.case2Tag)
    }

    @Test func hmacWithThirtyTwoByteKeyEqualsCryptoAuthHmacsha256() {
        // HMAC pads short keys with zeros, so "Jefe" + 28 zero bytes is the same key as "Jefe":
        // this is the 32-byte form crypto_auth_hmacsha256 requires, and the tag must not change.
        let padded = Vectors.HMAC.case2Key + [UInt8](repeating: 0, count: 28)
        #expect(
            MAC.hmacSHA256(key: SecretBytes(copying: padded), message: Vectors.HMAC.case2Data)
                == Vectors.HMAC.case2Tag)
    }

    @Test func keyedBLAKE2bMatchesLibsodiumVector() {
        let out = VaultKeys.keyedHash(key: SecretBytes(copying: Vectors.BLAKE2b.key), message: Vectors.BLAKE2b.message)
        #expect(out == SecretBytes(copying: Vectors.BLAKE2b.expected))
    }

    @Test func subkeyDerivationIsPinned() {
        let out = VaultKeys.subkey(of: SecretBytes(copying: Vectors.BLAKE2b.key), label: Vectors.BLAKE2b.subkeyLabel)
        #expect(out == SecretBytes(copying: Vectors.BLAKE2b.subkey))
    }
}

extension Vectors.Argon2id: CustomTestStringConvertible {
    var testDescription: String { name }
}
