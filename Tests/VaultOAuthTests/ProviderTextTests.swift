import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

/// Terminal escapes and bidi controls from the provider (a `trackingId`, a display name, an email) never reach a
/// terminal: every provider string shown to a person is cleaned first.
@Suite struct ProviderTextTests {
    static let hostile =
        "A\u{1b}[31mred\u{1b}]0;title\u{07}\rB\u{9b}2J\u{7f}\u{202e}evil\u{2066}x\u{2069}\u{200f}\u{0}\nC"

    func assertDisplayable(_ s: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let s else { return }
        let bad = s.unicodeScalars.filter {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value)
                || (0x2066...0x2069).contains($0.value)
        }
        #expect(
            bad.isEmpty, "control characters \(bad.map { String($0.value, radix: 16) }) in \(s.debugDescription)",
            sourceLocation: sourceLocation)
    }

    @Test func displayableRemovesControlsAndClips() {
        let clean = ProviderText.displayable(Self.hostile)
        assertDisplayable(clean)
        #expect(clean == "A[31mred]0;title B2Jevilx C")
        let long = String(repeating: "é", count: 500)
        #expect(ProviderText.displayable(long) == String(repeating: "é", count: 200) + "…")
        #expect(ProviderText.displayable(long, limit: 10).count == 11)
        #expect(ProviderText.displayable("plain name <a@b.c>") == "plain name <a@b.c>")
        #expect(ProviderText.displayable(nil as String?) == nil)
    }

    func client(_ script: [Result<HTTPResponse, OAuthError>]) -> OAuthClient {
        OAuthClient(provider: .webex, credentials: credentials(), transport: FakeTransport(script))
    }

    @Test func identityFieldsAreCleanAndClipped() async throws {
        let h = Self.hostile.unicodeScalars.map { $0.value < 0x80 ? String($0) : String(format: "\\u%04x", $0.value) }
            .joined().replacingOccurrences(of: "\u{1b}", with: "\\u001b").replacingOccurrences(
                of: "\u{07}", with: "\\u0007"
            )
            .replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\u{0}", with: "\\u0000")
            .replacingOccurrences(of: "\u{7f}", with: "\\u007f")
        let long = String(repeating: "n", count: 1000)
        let body =
            #"{"id":"P1\#(h)","emails":["a\#(h)@x"],"displayName":"\#(h)\#(long)","orgId":"O\#(h)","type":"person\#(h)"}"#
        let identity = try await client([json(200, body)]).identity(accessToken: "AT")
        for field in [identity.id, identity.email, identity.displayName, identity.orgId, identity.type] {
            assertDisplayable(field)
            #expect((field?.count ?? 0) <= ProviderText.defaultLimit + 1)
        }
        #expect(identity.displayName?.hasSuffix("…") == true)
        #expect(identity.email?.hasPrefix("aA[31mred") == true)
    }

    @Test func errorAnswersAreClean() async throws {
        let esc = #"\u001b[31m\u001b]0;pwned\u0007\r\u202eX"#
        let answers: [Result<HTTPResponse, OAuthError>] = [
            json(400, #"{"error":"invalid_grant\#(esc)","error_description":"bad\#(esc)","trackingId":"T\#(esc)"}"#),
            json(400, #"{"error":"weird\#(esc)","error_description":"\#(String(repeating: "d", count: 500))"}"#),
            json(401, #"{"message":"nope\#(esc)","errors":[{"description":"more\#(esc)"}],"trackingId":"T\#(esc)"}"#),
            json(503, "{}", headers: ["trackingid": "T\u{1b}[2J\u{202e}"]),
            .success(HTTPResponse(status: 302, headers: ["Location": "http://x/\u{1b}[2J"])),
            json(429, "{}", headers: ["Retry-After": "1", "TrackingID": "R\u{1b}]0;t\u{07}"]),
        ]
        let c = client(answers)
        for _ in answers {
            let e = try #require(await oauthError { _ = try await c.identity(accessToken: "AT") })
            assertDisplayable(e.errorDescription)
            assertDisplayable(e.trackingId)
            #expect((e.errorDescription?.count ?? 0) < 800)
            if case .oauth(let code, let description, _, _) = e {
                assertDisplayable(code)
                assertDisplayable(description)
            }
            if case .api(_, let message, _) = e { assertDisplayable(message) }
        }
    }

    /// `--verbose` prints the provider's trackingId header and body: the same rule applies to the trace.
    @Test func verboseTraceLinesAreClean() {
        let request = HTTPRequest(method: "POST", url: URL(string: "https://webexapis.com/v1/access_token")!)
        let bodies: [(String, String)] = [
            ("application/json", #"{"error":"x\u001b]0;t\u0007","error_description":"\#u{1b}[2J\#u{202e}raw"}"#),
            ("application/json", "{\"message\":\"cut \u{1b}[31m off"),
            ("application/x-www-form-urlencoded", "error=x\u{1b}[2J\r\nFAKE: line&a=\u{9b}b"),
        ]
        for (type, body) in bodies {
            let response = HTTPResponse(
                status: 400, headers: ["Content-Type": type, "TrackingID": "T\u{1b}[8m\u{2066}"], body: Data(body.utf8))
            let line = Redaction.describe(response, for: request, duration: "1 ms")
            assertDisplayable(line)
            #expect(line.contains("trackingId=T[8m"))
        }
        let huge = HTTPResponse(
            status: 400, headers: ["Content-Type": "application/json"],
            body: Data(#"{"message":"\#(String(repeating: "m", count: 100_000))"}"#.utf8))
        #expect(Redaction.describe(huge, for: request, duration: "1 ms").count <= Redaction.maxTraceLine + 1)
    }
}
