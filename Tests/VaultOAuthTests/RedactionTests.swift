import Foundation
import Testing

@testable import VaultOAuth

@Suite struct RedactionTests {
    static let secrets = [
        "SECRET_CLIENT", "SECRET_CODE", "SECRET_VERIFIER", "SECRET_REFRESH", "SECRET_ACCESS", "SECRET_DEVICE",
        "SECRET_BEARER",
    ]

    func assertClean(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for s in Self.secrets {
            #expect(!text.contains(s), "\(s) survived in: \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test func formBodiesAndHeaders() {
        let form = FormEncoding.encode([
            ("grant_type", "authorization_code"), ("client_id", "CID"), ("client_secret", "SECRET_CLIENT"),
            ("code", "SECRET_CODE"), ("redirect_uri", "http://localhost/cb"), ("code_verifier", "SECRET_VERIFIER"),
            ("refresh_token", "SECRET_REFRESH"), ("access_token", "SECRET_ACCESS"), ("device_code", "SECRET_DEVICE"),
        ])
        let request = HTTPRequest(
            method: "POST", url: URL(string: "https://webexapis.com/v1/access_token")!,
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer SECRET_BEARER"],
            body: Data(form.utf8))
        let line = Redaction.describe(request)
        assertClean(line)
        #expect(line.contains("client_id=CID"))
        #expect(line.contains("grant_type=authorization_code"))
        #expect(line.contains("client_secret=[redacted]"))
        #expect(line.contains("Authorization: [redacted]"))
        #expect(line.hasPrefix("→ POST https://webexapis.com/v1/access_token"))
    }

    @Test func jsonBodiesIncludingTruncatedOnes() {
        let body =
            #"{"access_token" : "SECRET_ACCESS","expires_in":1209599,"refresh_token":"SECRET_REFRESH","nested":{"device_code":"SECRET_DEVICE"},"token_type":"Bearer","note":"code"}"#
        let response = HTTPResponse(
            status: 200, headers: ["Content-Type": "application/json", "trackingid": "T1"], body: Data(body.utf8))
        let request = HTTPRequest(method: "POST", url: URL(string: "https://webexapis.com/v1/access_token")!)
        let line = Redaction.describe(response, for: request, duration: "12 ms")
        assertClean(line)
        #expect(line.contains(#""expires_in":1209599"#))
        #expect(line.contains(#""token_type":"Bearer""#))
        #expect(line.contains("trackingId=T1"))
        #expect(line.contains("12 ms"))
        // A value after a key named "code" is hidden; a value that merely says "code" is not a key.
        #expect(line.contains(#""note":"code""#))

        assertClean(Redaction.json(#"{"access_token":"SECRET_ACC"#))
        assertClean(Redaction.json(#"{"refresh_token":"SECRET_REFRESH\"quoted\"","x":1}"#))
        assertClean(Redaction.json(#"[{"accessToken":"SECRET_ACCESS"}]"#))
    }

    @Test func queryStringsAndHTML() {
        let url = URL(string: "http://localhost:8080/cb?state=abc&code=SECRET_CODE#x")!
        let shown = Redaction.url(url)
        assertClean(shown)
        #expect(shown == "http://localhost:8080/cb?state=abc&code=[redacted]#x")
        let html = Redaction.body(Data("<html>SECRET_ACCESS</html>".utf8), contentType: "text/html")
        assertClean(html)
        #expect(html == "(HTML, 26 bytes)")
    }

    /// End to end through CurlTransport's tracer, against a port that is bound but not listening, so
    /// the connection is refused and no other program can take the port meanwhile.
    @Test func transportTracerIsRedacted() async throws {
        let refusing = try RefusingPort()
        let lines = LineCollector()
        let transport = CurlTransport(version: "1.2.3", timeout: 5, tracer: { lines.append($0) })
        let request = HTTPRequest(
            method: "POST", url: URL(string: "http://127.0.0.1:\(refusing.port)/v1/access_token")!,
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic SECRET_BEARER"],
            body: Data("client_secret=SECRET_CLIENT&refresh_token=SECRET_REFRESH".utf8))
        var thrown: (any Error)?
        do {
            let r = try await transport.send(request)
            Issue.record("unexpected response \(r.status)")
        } catch { thrown = error }
        let e = try #require(thrown as? OAuthError, "\(String(describing: thrown))")
        #expect(e == .transport(.cannotConnect, host: "127.0.0.1:\(refusing.port)"))
        #expect(
            e.errorDescription
                == "cannot connect to 127.0.0.1:\(refusing.port); check the network and the integration's API base URL")
        let all = lines.all.joined(separator: "\n")
        #expect(lines.all.count == 2)
        assertClean(all)
        #expect(all.contains("failed after"))
    }
}

final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}
