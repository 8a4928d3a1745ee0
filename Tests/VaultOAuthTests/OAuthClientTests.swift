import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

func json(_ status: Int, _ body: String, headers: [String: String] = [:]) -> Result<HTTPResponse, OAuthError> {
    var h = headers
    h["Content-Type"] = h["Content-Type"] ?? "application/json"
    return .success(HTTPResponse(status: status, headers: h, body: Data(body.utf8)))
}

/// The error thrown by `body`, which must be an OAuthError.
func oauthError(_ body: () async throws -> Void) async -> OAuthError? {
    do {
        try await body()
        return nil
    } catch let e as OAuthError {
        return e
    } catch {
        return nil
    }
}

@Suite struct OAuthClientTests {
    func client(_ script: [Result<HTTPResponse, OAuthError>], provider: Provider = .webex) -> (
        OAuthClient, FakeTransport
    ) {
        let t = FakeTransport(script)
        return (OAuthClient(provider: provider, credentials: credentials(), transport: t), t)
    }

    @Test func codeExchangeBodyIsExact() async throws {
        let (c, t) = client([json(200, tokenJSON(access: "AT_new", refresh: "RT_new"))])
        let pkce = PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        let tokens = try await c.exchangeCode("co+de&=", pkce: pkce)
        #expect(tokens.accessToken == "AT_new")
        #expect(tokens.refreshToken == "RT_new")
        let r = try #require(t.requests.first)
        #expect(r.method == "POST")
        #expect(r.url.absoluteString == "http://127.0.0.1:9/v1/access_token")
        #expect(r.header("content-type") == "application/x-www-form-urlencoded")
        #expect(r.header("Authorization") == nil)
        #expect(
            String(decoding: r.body ?? Data(), as: UTF8.self)
                == "grant_type=authorization_code&client_id=C1d%26%3D%2B&client_secret=s3cr%2Bt%2F%26%3D%25&code=co%2Bde%26%3D"
                + "&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        )
        #expect(
            r.formFields == [
                "grant_type": "authorization_code", "client_id": "C1d&=+", "client_secret": "s3cr+t/&=%",
                "code": "co+de&=",
                "redirect_uri": "http://localhost:8080/callback",
                "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ])
    }

    @Test func refreshBody() async throws {
        let (c, t) = client([json(200, #"{"access_token":"AT2","expires_in":60}"#)])
        let tokens = try await c.refresh(refreshToken: "RT+1")
        #expect(tokens.refreshToken == nil)
        #expect(
            t.requests.first?.formFields == [
                "grant_type": "refresh_token", "client_id": "C1d&=+", "client_secret": "s3cr+t/&=%",
                "refresh_token": "RT+1",
            ])
    }

    @Test func basicClientAuthWhenTheProviderSaysSo() async throws {
        var p = Provider.webex
        p.tokenClientAuth = .basic
        let (c, t) = client([json(200, tokenJSON(access: "AT_new", refresh: "RT_new"))], provider: p)
        _ = try await c.refresh(refreshToken: "RT")
        let r = try #require(t.requests.first)
        #expect(r.formFields["client_secret"] == nil)
        #expect(
            r.header("Authorization") == "Basic " + Data("C1d%26%3D%2B:s3cr%2Bt%2F%26%3D%25".utf8).base64EncodedString()
        )
    }

    @Test func invalidGrantIsFinal() async throws {
        let (c, _) = client([
            json(
                400,
                #"{"error":"invalid_grant","error_description":"The refresh token provided is expired, revoked, malformed, or invalid."}"#
            )
        ])
        let e = try #require(await oauthError { _ = try await c.refresh(refreshToken: "RT") })
        #expect(e.isInvalidGrant)
        #expect(!e.retryable)
        #expect(e.errorDescription?.contains("tokenvault authorize") == true)
        #expect(RetryPolicy().delay(forAttempt: 1, error: e) == nil)
    }

    @Test func invalidClientIsAnOAuthErrorButNotInvalidGrant() async throws {
        let (c, _) = client([json(401, #"{"error":"invalid_client"}"#, headers: ["TrackingID": "ROUTER_1"])])
        let e = try #require(await oauthError { _ = try await c.refresh(refreshToken: "RT") })
        #expect(e == .oauth(code: "invalid_client", description: nil, status: 401, trackingId: "ROUTER_1"))
        #expect(!e.isInvalidGrant)
        #expect(e.errorDescription?.contains("trackingId ROUTER_1") == true)
    }

    @Test func rateLimitedWithRetryAfter() async throws {
        let (c, _) = client([
            json(429, #"{"message":"Too Many Requests","trackingId":"T429"}"#, headers: ["Retry-After": "17"]),
            json(429, "", headers: [:]),
        ])
        let e = try #require(await oauthError { _ = try await c.refresh(refreshToken: "RT") })
        #expect(e == .rateLimited(retryAfter: 17, trackingId: "T429"))
        #expect(e.retryable && e.retryAfter == 17)
        let noHeader = try #require(await oauthError { _ = try await c.refresh(refreshToken: "RT") })
        #expect(noHeader.retryAfter == 1)
    }

    @Test func serverError() async throws {
        let (c, _) = client([
            json(503, "<html>Service Unavailable</html>", headers: ["Content-Type": "text/html", "trackingid": "T503"])
        ])
        let e = try #require(await oauthError { _ = try await c.refresh(refreshToken: "RT") })
        #expect(e == .server(status: 503, trackingId: "T503"))
        #expect(e.retryable)
        #expect(e.errorDescription == "the provider had a server error (HTTP 503); try again later (trackingId T503)")
    }

    @Test func htmlBodyOnSuccessStatus() async throws {
        let (c, _) = client([
            json(200, "\n<!DOCTYPE html><html><body>Sign in</body></html>", headers: ["Content-Type": "text/html"])
        ])
        let e = try #require(
            await oauthError {
                _ = try await c.exchangeCode("c", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
            })
        #expect(e == .unexpectedBody(.html, status: 200, trackingId: nil))
        #expect(e.errorDescription?.contains("the provider answered with HTML, not JSON") == true)
        #expect(!e.retryable)
    }

    @Test func truncatedAndNonJSONBodies() async throws {
        let (c, _) = client([
            json(200, #"{"access_token":"AT","expires_in":12"#),
            json(200, "OK"),
            json(200, ""),
            json(200, #"{"access_token":"AT","expires_in":"later"}"#),
        ])
        #expect(
            await oauthError { _ = try await c.refresh(refreshToken: "RT") }
                == .unexpectedBody(.truncated, status: 200, trackingId: nil))
        #expect(
            await oauthError { _ = try await c.refresh(refreshToken: "RT") }
                == .unexpectedBody(.notJSON, status: 200, trackingId: nil))
        #expect(
            await oauthError { _ = try await c.refresh(refreshToken: "RT") }
                == .unexpectedBody(.empty, status: 200, trackingId: nil))
        let e = await oauthError { _ = try await c.refresh(refreshToken: "RT") }
        #expect(e == .invalidTokenResponse(#"expires_in must be a positive number of seconds, got "later""#))
    }

    @Test func restErrorCarriesTrackingIdFromBodyOrHeader() async throws {
        let (c, t) = client([
            json(
                401,
                #"{"message":"The request requires a valid access token set in the Authorization request header.","errors":[{"description":"The request requires a valid access token set in the Authorization request header."}],"trackingId":"ROUTER_BODY"}"#
            ),
            json(403, #"{"message":"Forbidden"}"#, headers: ["trackingid": "ROUTER_HEADER"]),
        ])
        let e1 = try #require(await oauthError { _ = try await c.identity(accessToken: "AT") })
        #expect(e1.trackingId == "ROUTER_BODY")
        #expect(
            e1
                == .api(
                    status: 401,
                    message: "The request requires a valid access token set in the Authorization request header.",
                    trackingId: "ROUTER_BODY"))
        #expect(e1.errorDescription?.hasSuffix("(trackingId ROUTER_BODY)") == true)
        let e2 = try #require(await oauthError { _ = try await c.identity(accessToken: "AT") })
        #expect(e2 == .api(status: 403, message: "Forbidden", trackingId: "ROUTER_HEADER"))
        #expect(t.requests[0].header("Authorization") == "Bearer AT")
        #expect(t.requests[0].url.absoluteString == "http://127.0.0.1:9/v1/people/me")
    }

    @Test func redirectIsNotFollowed() async throws {
        let (c, _) = client([.success(HTTPResponse(status: 302, headers: ["Location": "https://elsewhere/"]))])
        let e = await oauthError { _ = try await c.refresh(refreshToken: "RT") }
        #expect(e == .unexpectedRedirect(status: 302, location: "https://elsewhere/"))
    }

    @Test func identity() async throws {
        let (c, _) = client([
            json(
                200,
                #"{"id":"Y2lz","emails":["ada@example.com","other@example.com"],"displayName":"Ada","orgId":"ORG","type":"person","nickName":"A"}"#
            )
        ])
        let me = try await c.identity(accessToken: "AT")
        #expect(me == Identity(id: "Y2lz", email: "ada@example.com", displayName: "Ada", orgId: "ORG", type: "person"))
    }

    @Test func webexRevoke() async throws {
        let (c, t) = client([.success(HTTPResponse(status: 204))])
        try await c.revoke(accessToken: "AT")
        let r = try #require(t.requests.first)
        #expect(r.method == "DELETE")
        #expect(r.url.absoluteString == "http://127.0.0.1:9/v1/authorizations?clientId=C1d%26%3D%2B")
        #expect(r.header("Authorization") == "Bearer AT")
        #expect(r.body == nil)

        let (c2, _) = client([json(403, #"{"message":"Missing scope identity:tokens_write","trackingId":"T403"}"#)])
        let e = await oauthError { try await c2.revoke(accessToken: "AT") }
        #expect(e == .api(status: 403, message: "Missing scope identity:tokens_write", trackingId: "T403"))
    }

    @Test func rfc7009Revoke() async throws {
        var p = Provider.webex
        p.endpoints.revoke = .absolute("https://idp.example/oauth/revoke")
        p.revocation = .rfc7009
        p.rebasesEndpoints = false  // as a generic provider: its URLs are its own
        let (c, t) = client([.success(HTTPResponse(status: 200))], provider: p)
        try await c.revoke(accessToken: "AT", refreshToken: "RT")
        let r = try #require(t.requests.first)
        #expect(r.method == "POST")
        #expect(r.url.absoluteString == "https://idp.example/oauth/revoke")
        #expect(
            r.formFields == [
                "token": "RT", "token_type_hint": "refresh_token", "client_id": "C1d&=+", "client_secret": "s3cr+t/&=%",
            ])

        p.revocation = .none(hint: "revoke it in the provider's settings")
        let (c3, t3) = client([], provider: p)
        let e = await oauthError { try await c3.revoke(accessToken: "AT") }
        guard case .unsupported? = e else {
            Issue.record("expected unsupported, got \(String(describing: e))")
            return
        }
        #expect(t3.requests.isEmpty)
    }

    @Test func devicePollingSequence() async throws {
        let (c, t) = client([
            json(
                200,
                #"{"device_code":"DC","user_code":"ABCD-EFGH","verification_uri":"https://login.webex.com/device","verification_uri_complete":"https://login.webex.com/device?u=ABCD-EFGH","interval":2,"expires_in":300}"#
            ),
            json(428, #"{"error":"authorization_pending"}"#),
            json(400, #"{"error":"slow_down"}"#),
            json(428, #"{"error":"authorization_pending"}"#),
            json(200, tokenJSON(access: "AT_new", refresh: "RT_new")),
        ])
        let device = try await c.startDeviceAuthorization()
        #expect(
            device
                == DeviceAuthorization(
                    deviceCode: "DC", userCode: "ABCD-EFGH", verificationURI: "https://login.webex.com/device",
                    verificationURIComplete: "https://login.webex.com/device?u=ABCD-EFGH", interval: 2, expiresIn: 300))
        let clock = SteppedClock()
        let tokens = try await c.pollDeviceToken(device, now: { clock.now }, sleep: { clock.advance($0) })
        #expect(tokens.accessToken == "AT_new")
        #expect(clock.sleeps == [2, 2, 7, 7])
        let start = t.requests[0]
        #expect(start.url.absoluteString == "http://127.0.0.1:9/v1/device/authorize")
        #expect(start.formFields == ["client_id": "C1d&=+", "scope": "spark:people_read spark:kms"])
        let poll = t.requests[1]
        #expect(poll.url.absoluteString == "http://127.0.0.1:9/v1/device/token")
        #expect(
            poll.formFields == [
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": "C1d&=+",
                "device_code": "DC",
            ])
        #expect(poll.header("Authorization")?.hasPrefix("Basic ") == true)
    }

    @Test func devicePollingEnds() async throws {
        let device = DeviceAuthorization(
            deviceCode: "DC", userCode: "U", verificationURI: "https://v", interval: 5, expiresIn: 12)
        let (c, _) = client([
            json(400, #"{"error":"expired_token"}"#), json(400, #"{"error":"access_denied"}"#),
            json(428, #"{"error":"authorization_pending"}"#), json(428, #"{"error":"authorization_pending"}"#),
        ])
        let clock = SteppedClock()
        #expect(
            await oauthError {
                _ = try await c.pollDeviceToken(device, now: { clock.now }, sleep: { clock.advance($0) })
            } == .deviceCodeExpired)
        let denied = await oauthError {
            _ = try await c.pollDeviceToken(device, now: { clock.now }, sleep: { clock.advance($0) })
        }
        #expect(denied == .oauth(code: "access_denied", description: nil, status: 400, trackingId: nil))
        // Two pending answers, then the local deadline (12 s) comes before a third poll: the last wait stops at it.
        let clock2 = SteppedClock()
        #expect(
            await oauthError {
                _ = try await c.pollDeviceToken(device, now: { clock2.now }, sleep: { clock2.advance($0) })
            } == .deviceCodeExpired)
        #expect(clock2.sleeps == [5, 5, 2])
    }
}

/// A clock that moves only when the code under test sleeps.
final class SteppedClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_700_000_000)
    private var recorded: [Double] = []
    var now: Date { lock.withLock { current } }
    var sleeps: [Double] { lock.withLock { recorded } }
    func advance(_ seconds: Double) {
        lock.withLock {
            recorded.append(seconds)
            current = current.addingTimeInterval(seconds)
        }
    }
}
