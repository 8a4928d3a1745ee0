import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

/// Token characters (RFC 6750 b64token), and no part of a secret in any error text.
@Suite struct TokenCharsetTests {
    static let b64tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

    func response(access: String, refresh: String = "RT") -> Data {
        Data(tokenJSON(access: access, refresh: refresh, expiresIn: 60).utf8)
    }

    @Test func everyB64TokenCharacterIsAccepted() throws {
        for c in Self.b64tokenAlphabet {
            let token = "T\(c)\(c)x"
            #expect(try TokenResponse.parse(response(access: token, refresh: token)).accessToken == token, "\(c)")
            #expect(try TokenResponse.parse(response(access: String(c))).accessToken == String(c), "\(c)")
        }
        let whole = Self.b64tokenAlphabet + "=="
        let t = try TokenResponse.parse(response(access: whole, refresh: "ZGVm="))
        #expect(t.accessToken == whole)
        #expect(t.refreshToken == "ZGVm=")
    }

    /// `x * y` globbed in an unquoted `eval $(tokenvault env …)`; the rest can quote, expand, run or split.
    static let refused: [String] = [
        " ", "*", "?", "[", "]", "$", "`", "'", "\"", ";", "&", "|", "<", ">", "(", ")", "\\", "{", "}", "!", "#",
        "%", "^", ",", ":", "@", "\t", "\n", "\r", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}", "é", "\u{202e}", "😀",
    ]

    @Test func everythingElseIsRefusedWithoutEchoingTheToken() throws {
        for bad in Self.refused + ["=x"] {
            let secret = "SECRETabc\(bad)defSECRET"
            for (access, refresh) in [(secret, "RT"), ("AT", secret)] {
                var thrown: (any Error)?
                do { _ = try TokenResponse.parse(response(access: access, refresh: refresh)) } catch { thrown = error }
                let e = try #require(thrown as? OAuthError, "\(bad.unicodeScalars.map { $0.value }) was accepted")
                guard case .invalidTokenResponse = e else {
                    Issue.record("\(e)")
                    continue
                }
                let text = e.errorDescription ?? ""
                #expect(text.contains(access == secret ? "access_token" : "refresh_token"))
                #expect(text.contains("RFC 6750"))
                #expect(e.isTokenCharacterRefusal)
                #expect(
                    !text.contains("SECRET") && !text.contains("abc") && !text.contains("def"), "token echoed: \(text)")
            }
        }
        // `=` only at the end, and not alone.
        for bad in ["a=b", "=", "==", "a=b=", "a= "] {
            #expect(rejection(#"{"access_token":"\#(bad)","expires_in":60}"#) != nil, "\(bad)")
        }
    }

    /// Error messages once echoed the first 40 characters of a malformed secret value. A token pasted where a
    /// JSON object or a lifetime belongs, and a provider that puts a token into `expires_in` or `token_type`.
    @Test func noErrorQuotesALongValue() throws {
        let secret = "SECRETeyJhbGciOiJSUzI1NiJ9.payload.sig"
        let cases = [
            "\"\(secret)\"",
            #"{"access_token":"AT","expires_in":"\#(secret)"}"#,
            #"{"access_token":"AT","expires_in":60,"refresh_token_expires_in":"\#(secret)"}"#,
            #"{"access_token":"AT","expires_in":60,"token_type":["\#(secret)"]}"#,
            #"{"access_token":"AT","expires_in":60,"scope":{"s":"\#(secret)"}}"#,
        ]
        for json in cases {
            let reason = try #require(rejection(json), "\(json.count) accepted")
            #expect(!reason.contains("SECRET") && !reason.contains("eyJ"), "\(reason)")
        }
        #expect(OAuthError.invalidTokenResponse("access_token is empty").isTokenCharacterRefusal == false)
        // Short values that cannot be tokens are still quoted, which is what makes the error useful.
        #expect(
            rejection(#"{"access_token":"a","expires_in":"soon"}"#)
                == #"expires_in must be a positive number of seconds, got "soon""#)
        #expect(JSONValue.string(secret).shortDescription == "a string of \(secret.count) characters")
        #expect(JSONValue.string("\u{1b}[2J").shortDescription == "a string of 4 characters")
    }
}
