import Testing

@testable import VaultCrypto

@Suite("Keys, MAC, random, secure memory, process hardening")
struct KeysAndPrimitivesTests {
    @Test func subkeysSeparateLabelsAndMasters() {
        let master = VaultKeys.randomKey()
        let access = VaultKeys.subkey(of: master, label: "account/A/access_token")
        #expect(access.count == 32)
        #expect(access == VaultKeys.subkey(of: master, label: "account/A/access_token"))
        #expect(access != VaultKeys.subkey(of: master, label: "account/A/refresh_token"))
        #expect(access != VaultKeys.subkey(of: master, label: "account/B/access_token"))
        #expect(access != VaultKeys.subkey(of: VaultKeys.randomKey(), label: "account/A/access_token"))
        #expect(access != master)
    }

    @Test func randomKeysDifferAndAreNotZero() {
        let a = VaultKeys.randomKey()
        let b = VaultKeys.randomKey()
        #expect(a.count == VaultKeys.keyBytes)
        #expect(a != b)
        #expect(a != SecretBytes(count: 32))
        #expect(Random.bytes(32) != Random.bytes(32))
        #expect(Random.bytes(0).isEmpty)
    }

    @Test func constantTimeEqual() {
        #expect(MAC.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!MAC.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!MAC.constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(!MAC.constantTimeEqual([], [0]))
        #expect(MAC.constantTimeEqual([], []))
    }

    @Test func hmacDependsOnKeyAndMessage() {
        let key = VaultKeys.randomKey()
        let tag = MAC.hmacSHA256(key: key, message: Array("entry 1".utf8))
        #expect(tag.count == 32)
        #expect(tag == MAC.hmacSHA256(key: key, message: Array("entry 1".utf8)))
        #expect(tag != MAC.hmacSHA256(key: key, message: Array("entry 2".utf8)))
        #expect(tag != MAC.hmacSHA256(key: VaultKeys.randomKey(), message: Array("entry 1".utf8)))
    }

    @Test(arguments: ["", "ya29.a0AfH6SM-token", "naïve café ✓ 🔑"])
    func copyToStringRoundTripsUTF8(_ text: String) {
        #expect(SecretBytes(copying: Array(text.utf8)).copyToString() == text)
    }

    @Test func copyToStringRejectsInvalidUTF8() {
        #expect(SecretBytes(copying: [0x61, 0xff, 0x62]).copyToString() == nil)
        #expect(SecretBytes(copying: [0xc3]).copyToString() == nil)  // truncated sequence
    }

    @Test func secretBytesStartZeroedAndCompareByContent() {
        let zero = SecretBytes(count: 16)
        zero.withUnsafeBytes { #expect($0.allSatisfy { $0 == 0 }) }
        let one = SecretBytes(count: 16)
        one.withUnsafeMutableBytes { $0[15] = 1 }
        #expect(zero != one)
        #expect(zero == SecretBytes(count: 16))
        #expect(SecretBytes(count: 16) != SecretBytes(count: 17))
    }

    @Test func secretBytesDoNotPrintTheirContents() {
        let secret = SecretBytes(copying: Array("hunter2".utf8))
        #expect(!"\(secret)".contains("hunter2"))
        #expect(!String(reflecting: secret).contains("hunter2"))
        #expect("\(secret)" == "SecretBytes(7 bytes, redacted)")
    }

    // Core dumps and PR_SET_DUMPABLE are tested on the built binary and its exec'd child
    // (EndToEndTests, ReadmeSecurity.noCoreDumpsAndNotDumpable): called here, they lowered the hard core limit of
    // the whole test process for good, and the binary-level test, run later in the same process, could then no
    // longer raise it for its control process (the sandbox has no CAP_SYS_RESOURCE).
}
