import Foundation

/// A source of random bytes, injected so tests can fix `state` and PKCE values.
public protocol RandomSource: Sendable {
    func bytes(_ n: Int) -> [UInt8]
}

/// The system CSPRNG. `SystemRandomNumberGenerator` reads `getrandom(2)` on Linux and `arc4random` on Darwin.
public struct SystemRandom: RandomSource {
    public init() {}

    public func bytes(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    }
}

/// A PKCE (RFC 7636) verifier and its S256 challenge. S256 only: `plain` protects nothing.
public struct PKCE: Sendable, Equatable {
    public static let method = "S256"

    /// Sent with the code exchange; a secret until then.
    public let verifier: String
    /// Sent in the authorization URL: BASE64URL(SHA256(verifier)).
    public let challenge: String

    /// The verifier from 32 random bytes: 43 base64url characters, the shortest RFC 7636 allows with full entropy.
    public static func generate(random: any RandomSource = SystemRandom()) -> PKCE {
        PKCE(verifier: Base64URL.encode(random.bytes(32)))
    }

    /// Builds the pair from a known verifier; for known-answer tests and for resuming a paste flow.
    public init(verifier: String) {
        self.verifier = verifier
        self.challenge = Base64URL.encode(SHA256.hash(Array(verifier.utf8)))
    }

    /// A fresh OAuth `state` (RFC 6749 §10.12): 32 random bytes, base64url, single use, compared exactly.
    public static func newState(random: any RandomSource = SystemRandom()) -> String {
        Base64URL.encode(random.bytes(32))
    }
}

/// Base64 with the URL-safe alphabet and no padding (RFC 4648 §5), as PKCE and `state` require.
enum Base64URL {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
