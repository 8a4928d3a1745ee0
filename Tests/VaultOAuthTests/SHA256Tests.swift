import Foundation
import Testing

@testable import VaultOAuth

/// Fixed bytes, so state and PKCE values are known.
struct FixedRandom: RandomSource {
    var byte: UInt8 = 0xAB
    func bytes(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: Int(byte) + $0) } }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite struct SHA256Tests {
    @Test(arguments: [
        // FIPS 180-2 appendix B
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ])
    func fipsVectors(input: String, expected: String) {
        #expect(hex(SHA256.hash(Array(input.utf8))) == expected)
    }

    /// Lengths around the 55/56/64-byte padding boundaries, where hand-written padding usually breaks.
    @Test(arguments: [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
        (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
        (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
    ])
    func paddingBoundaries(length: Int, expected: String) {
        #expect(hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: length))) == expected)
    }
}

@Suite struct PKCETests {
    @Test func rfc7636AppendixB() {
        let pkce = PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        #expect(PKCE.method == "S256")
    }

    /// RFC 7636 appendix B's verifier is the base64url of these 32 octets: generate() must produce it.
    @Test func generateEncodesThirtyTwoBytesAsBase64URL() {
        struct AppendixB: RandomSource {
            func bytes(_ n: Int) -> [UInt8] {
                [
                    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
                    22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
                ].prefix(n).map { $0 }
            }
        }
        let pkce = PKCE.generate(random: AppendixB())
        #expect(pkce.verifier == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func systemRandomVerifierShape() {
        let a = PKCE.generate()
        let b = PKCE.generate()
        #expect(a.verifier.count == 43)
        #expect(a.challenge.count == 43)
        #expect(a.verifier != b.verifier)
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        #expect(a.verifier.allSatisfy(allowed.contains))
        #expect(a.challenge.allSatisfy(allowed.contains))
    }

    @Test func stateIsThirtyTwoRandomBytes() {
        let s = PKCE.newState(random: FixedRandom(byte: 0xFF))
        #expect(s.count == 43)
        #expect(!s.contains("+") && !s.contains("/") && !s.contains("="))
        #expect(PKCE.newState() != PKCE.newState())
        #expect(SystemRandom().bytes(32).count == 32)
    }
}
