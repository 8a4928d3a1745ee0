import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

/// Device grant polling stops at the provider's `expires_in` (else 15 minutes), and a verification URI must be https
/// (or loopback http).
@Suite struct DeviceGrantLimitTests {
    func client(_ script: [Result<HTTPResponse, OAuthError>]) -> (OAuthClient, FakeTransport) {
        let t = FakeTransport(script)
        return (OAuthClient(provider: .webex, credentials: credentials(), transport: t), t)
    }

    static let pending = json(428, #"{"error":"authorization_pending"}"#)

    @Test func withoutExpiresInPollingStopsAfterFifteenMinutes() async throws {
        let device = DeviceAuthorization(
            deviceCode: "DC", userCode: "U", verificationURI: "https://v", interval: 5, expiresIn: nil)
        // Far more pending answers than 15 minutes of 5 s polls: the fake fails the test if one is left unused
        // only by never being asked, so count what was asked.
        let (c, t) = client(Array(repeating: Self.pending, count: 400))
        let clock = SteppedClock()
        let start = clock.now
        let e = await oauthError {
            _ = try await c.pollDeviceToken(device, now: { clock.now }, sleep: { clock.advance($0) })
        }
        #expect(e == .deviceCodeExpired)
        #expect(clock.now.timeIntervalSince(start) == 900)
        #expect(t.requests.count == 179)  // polls at 5, 10, … 895 s; the wait to 900 s ends it
    }

    @Test func providerExpiresInIsHonouredAndCapped() async throws {
        let (c, t) = client(Array(repeating: Self.pending, count: 800))
        let clock = SteppedClock()
        let start = clock.now
        let short = DeviceAuthorization(
            deviceCode: "DC", userCode: "U", verificationURI: "https://v", interval: 5, expiresIn: 30)
        #expect(
            await oauthError {
                _ = try await c.pollDeviceToken(short, now: { clock.now }, sleep: { clock.advance($0) })
            } == .deviceCodeExpired)
        #expect(clock.now.timeIntervalSince(start) == 30)
        #expect(t.requests.count == 5)
        // Ten years of expires_in and interval: one wait, to the one-hour cap, and no poll at all.
        let clock2 = SteppedClock()
        let start2 = clock2.now
        let huge = DeviceAuthorization(
            deviceCode: "DC", userCode: "U", verificationURI: "https://v", interval: TokenResponse.maxLifetime,
            expiresIn: TokenResponse.maxLifetime)
        #expect(
            await oauthError {
                _ = try await c.pollDeviceToken(huge, now: { clock2.now }, sleep: { clock2.advance($0) })
            } == .deviceCodeExpired)
        #expect(clock2.now.timeIntervalSince(start2) == Double(OAuthClient.maxDeviceCodeLifetime))
        #expect(clock2.sleeps == [Double(OAuthClient.maxDeviceCodeLifetime)])
        #expect(t.requests.count == 5)
    }

    func start(_ uri: String, complete: String? = nil, userCode: String = "ABCD-EFGH") async -> Result<
        DeviceAuthorization, OAuthError
    > {
        var o: [String: Any] = [
            "device_code": "DC", "user_code": userCode, "verification_uri": uri, "interval": 5, "expires_in": 300,
        ]
        if let complete { o["verification_uri_complete"] = complete }
        let body = String(decoding: try! JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        let (c, _) = client([json(200, body)])
        do { return .success(try await c.startDeviceAuthorization()) } catch let e as OAuthError {
            return .failure(e)
        } catch {
            return .failure(.invalidResponse("\(error)"))
        }
    }

    @Test func verificationURIMustBeHTTPSOrLoopback() async throws {
        for good in [
            "https://login.webex.com/device", "HTTPS://idbroker.webex.com/x?y=1",
            "http://127.0.0.1:8080/v1/device/verify",
            "http://localhost/device", "http://[::1]:9/device",
        ] {
            let r = await start(good, complete: good + "?u=1")
            if case .failure(let e) = r { Issue.record("\(good): \(e)") }
        }
        for bad in [
            "http://login.webex.com/device", "javascript:alert(1)", "file:///etc/passwd", "ftp://x/y",
            "https:///nohost",
            "device", "http://127.0.0.1.evil.example/x", "http://localhost@evil.example/", "https://x/\u{1b}[2J",
        ] {
            for (uri, complete) in [(bad, nil), ("https://ok.example/device", bad)] as [(String, String?)] {
                let r = await start(uri, complete: complete)
                guard case .failure(let e) = r, case .invalidResponse(let reason) = e else {
                    Issue.record("\(bad) accepted: \(r)")
                    continue
                }
                #expect(
                    reason.contains(complete == nil ? "\"verification_uri\"" : "\"verification_uri_complete\""),
                    "\(reason)")
                #expect(reason.contains("not an https URL"))
                if bad.count > 8 { #expect(!reason.contains(bad)) }
            }
        }
        let r = await start("https://ok.example/device", userCode: "AB\u{1b}[2JCD")
        guard case .failure(.invalidResponse) = r else {
            Issue.record("user code with ESC accepted: \(r)")
            return
        }
    }
}
