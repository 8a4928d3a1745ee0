import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

/// Each preset's differences, as the client sends and reads them (fake transport; the end-to-end tests drive the
/// same presets against the sandbox over HTTP).
@Suite struct ProviderShapeTests {
    let sandbox = URL(string: "http://127.0.0.1:9")!

    func client(
        _ provider: Provider, _ script: [Result<HTTPResponse, OAuthError>], secret: String = "sec",
        scopes: [String] = ["a", "b"],
        tenant: String? = nil
    ) -> (OAuthClient, FakeTransport) {
        let t = FakeTransport(script)
        let credentials = ClientCredentials(
            clientId: "cid", clientSecret: secret, redirectURI: "http://127.0.0.1:8765/cb",
            scopes: scopes, apiBase: sandbox, tenant: tenant)
        return (OAuthClient(provider: provider, credentials: credentials, transport: t), t)
    }

    func query(_ url: URL) -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: (URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems ?? []).map {
                ($0.name, $0.value ?? "")
            })
    }

    @Test func googleAsksForOfflineAccessAndConsent() {
        let (c, _) = client(.google, [])
        let url = c.authorizationURL(state: "s", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        #expect(url.absoluteString.hasPrefix("http://127.0.0.1:9/o/oauth2/v2/auth?"))
        let q = query(url)
        #expect(
            q["access_type"] == "offline" && q["prompt"] == "consent" && q["scope"] == "a b"
                && q["code_challenge_method"] == "S256")
    }

    @Test func slackAsksForUserScopesCommaSeparatedAndReadsAuthedUser() async throws {
        let (c, t) = client(
            .slack,
            [
                json(
                    200,
                    #"{"ok":true,"app_id":"A1","authed_user":{"id":"U1","scope":"users:read,chat:write","access_token":"xoxe.xoxp-1","token_type":"user","refresh_token":"xoxe-1-r","expires_in":43200},"team":{"id":"T1"}}"#
                )
            ])
        let url = c.authorizationURL(state: "s", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        #expect(query(url)["user_scope"] == "a,b" && query(url)["scope"] == nil)
        let tokens = try await c.exchangeCode("code", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        #expect(tokens.accessToken == "xoxe.xoxp-1" && tokens.refreshToken == "xoxe-1-r" && tokens.expiresIn == 43200)
        #expect(tokens.scope == ["users:read", "chat:write"])
        let r = try #require(t.requests.first)
        #expect(r.url.absoluteString == "http://127.0.0.1:9/api/oauth.v2.access")
        // Slack prefers HTTP Basic: the secret is not in the body.
        #expect(r.header("Authorization") == "Basic " + Data("cid:sec".utf8).base64EncodedString())
        #expect(r.formFields["client_secret"] == nil)
    }

    @Test func slackOkFalseInAnHTTP200IsAnErrorAndADeadRefreshTokenIsInvalidGrant() async throws {
        let (c, _) = client(.slack, [json(200, #"{"ok":false,"error":"invalid_refresh_token"}"#)])
        let e = await oauthError { _ = try await c.refresh(refreshToken: "xoxe-1-r") }
        guard case .oauth(let code, let description, let status, _)? = e else {
            Issue.record("got \(String(describing: e))")
            return
        }
        #expect(code == "invalid_grant" && description == "invalid_refresh_token" && status == 200)
        #expect(e?.isInvalidGrant == true)
    }

    @Test func slackIdentityIsAuthTestAndARefusedTokenCountsAs401() async throws {
        let (c, t) = client(
            .slack,
            [
                json(
                    200,
                    #"{"ok":true,"url":"https://x.slack.com/","team":"X","user":"pat","team_id":"T1","user_id":"U1"}"#),
                json(200, #"{"ok":false,"error":"token_expired"}"#),
            ])
        let me = try await c.identity(accessToken: "xoxp")
        #expect(me == Identity(id: "U1", email: nil, displayName: "pat", orgId: "T1", type: nil))
        #expect(
            t.requests[0].method == "POST" && t.requests[0].url.absoluteString == "http://127.0.0.1:9/api/auth.test")
        let e = await oauthError { _ = try await c.identity(accessToken: "xoxp") }
        #expect(e == .api(status: 401, message: "token_expired", trackingId: nil))
    }

    @Test func githubFormAnswersAndErrorsInHTTP200() async throws {
        let form = ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"]
        let (c, t) = client(
            .github,
            [
                json(
                    200,
                    "access_token=ghu_1&expires_in=28800&refresh_token=ghr_1&refresh_token_expires_in=15811200&scope=&token_type=bearer",
                    headers: form),
                json(
                    200,
                    #"{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}"#
                ),
                json(200, "error=bad_verification_code&error_description=The+code+passed+is+incorrect", headers: form),
            ])
        let tokens = try await c.refresh(refreshToken: "ghr_0")
        #expect(
            tokens.accessToken == "ghu_1" && tokens.expiresIn == 28800 && tokens.refreshTokenExpiresIn == 15_811_200)
        #expect(t.requests[0].header("Accept") == "application/json")
        #expect(t.requests[0].formFields["client_secret"] == "sec")
        let dead = await oauthError { _ = try await c.refresh(refreshToken: "ghr_0") }
        #expect(dead?.isInvalidGrant == true)
        let code = await oauthError {
            _ = try await c.exchangeCode("x", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        }
        guard case .oauth("bad_verification_code", _, 200, _)? = code else {
            Issue.record("got \(String(describing: code))")
            return
        }
    }

    @Test func githubOAuthAppTokensWithoutExpiryAreKeptAsNonExpiring() async throws {
        let (c, _) = client(.github, [json(200, #"{"access_token":"gho_1","scope":"repo","token_type":"bearer"}"#)])
        let tokens = try await c.exchangeCode("x", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        #expect(tokens.expiresIn == TokenResponse.maxLifetime && tokens.refreshToken == nil)
        // Webex refuses an answer without a lifetime, as before.
        let (w, _) = client(.webex, [json(200, #"{"access_token":"AT"}"#)])
        #expect(
            await oauthError {
                _ = try await w.exchangeCode("x", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
            } != nil)
    }

    @Test func githubIdentityHasANumericIdAndRevokeUsesTheRESTAPI() async throws {
        let (c, t) = client(
            .github,
            [
                json(200, #"{"id":583231,"login":"octocat","name":null,"email":null}"#),
                .success(HTTPResponse(status: 204)),
            ])
        let me = try await c.identity(accessToken: "ghu_1")
        #expect(me.id == "583231" && me.displayName == "octocat" && me.email == nil)
        try await c.revoke(accessToken: "ghu_1", refreshToken: "ghr_1")
        let r = t.requests[1]
        #expect(r.method == "DELETE" && r.url.absoluteString == "http://127.0.0.1:9/applications/cid/token")
        #expect(r.header("Authorization") == "Basic " + Data("cid:sec".utf8).base64EncodedString())
        let body = try JSONSerialization.jsonObject(with: r.body ?? Data()) as? [String: String]
        #expect(body == ["access_token": "ghu_1"])
    }

    @Test func microsoftTenantPathsPublicClientAndNoRevocation() async throws {
        let (c, t) = client(
            .microsoft,
            [json(200, #"{"access_token":"eyJ0","expires_in":4000,"refresh_token":"M.R1","token_type":"Bearer"}"#)],
            secret: "", tenant: "organizations")
        let url = c.authorizationURL(state: "s", pkce: PKCE(verifier: String(repeating: "v", count: 43)))
        #expect(url.absoluteString.hasPrefix("http://127.0.0.1:9/organizations/oauth2/v2.0/authorize?"))
        #expect(query(url)["response_mode"] == "query")
        _ = try await c.refresh(refreshToken: "M.R0")
        let r = try #require(t.requests.first)
        #expect(r.url.absoluteString == "http://127.0.0.1:9/organizations/oauth2/v2.0/token")
        // A public client sends its id and no secret, in no form.
        #expect(
            r.formFields["client_id"] == "cid" && r.formFields["client_secret"] == nil
                && r.header("Authorization") == nil)
        let e = await oauthError { try await c.revoke(accessToken: "eyJ0") }
        guard case .unsupported(let hint)? = e else {
            Issue.record("got \(String(describing: e))")
            return
        }
        #expect(hint.contains("myaccount.microsoft.com"))
        #expect(t.requests.count == 1)
    }

    @Test func microsoftTenantDefaultsToCommon() {
        let (c, _) = client(.microsoft, [], tenant: nil)
        #expect(
            c.authorizationURL(state: "s", pkce: PKCE(verifier: String(repeating: "v", count: 43))).path
                == "/common/oauth2/v2.0/authorize")
    }

    @Test func deviceGrantPollsTheTokenEndpointWhenTheProviderHasNoSeparateOne() async throws {
        let (c, t) = client(
            .github,
            [
                json(
                    200,
                    #"{"device_code":"DC","user_code":"ABCD-1234","verification_uri":"https://github.com/login/device","expires_in":900,"interval":5}"#
                ),
                json(200, #"{"error":"authorization_pending"}"#),
                json(200, #"{"access_token":"ghu_1","expires_in":28800,"refresh_token":"ghr_1"}"#),
            ])
        let device = try await c.startDeviceAuthorization()
        let tokens = try await c.pollDeviceToken(device, now: { Date(timeIntervalSince1970: 0) }, sleep: { _ in })
        #expect(tokens.accessToken == "ghu_1")
        #expect(
            t.requests.map(\.url.path) == [
                "/login/device/code", "/login/oauth/access_token", "/login/oauth/access_token",
            ])
        #expect(t.requests[1].formFields["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code")
    }

    @Test func slackRevokeSendsTheTokenAsBearerAndReadsOk() async throws {
        let (c, t) = client(
            .slack, [json(200, #"{"ok":true,"revoked":true}"#), json(200, #"{"ok":false,"error":"invalid_auth"}"#)])
        try await c.revoke(accessToken: "xoxp-1")
        #expect(
            t.requests[0].header("Authorization") == "Bearer xoxp-1" && t.requests[0].url.path == "/api/auth.revoke")
        #expect(await oauthError { try await c.revoke(accessToken: "xoxp-1") } != nil)
    }

    // MARK: OpenID Connect discovery

    func document(_ issuer: String, _ extra: String = "") -> [String: JSONValue] {
        let text =
            #"{"issuer":"\#(issuer)","authorization_endpoint":"\#(issuer)/authorize","token_endpoint":"\#(issuer)/token","userinfo_endpoint":"\#(issuer)/userinfo""#
            + extra + "}"
        return JSONValue.parse(Data(text.utf8))!.objectValue!
    }

    @Test func discoveryFillsEndpointsAndDefaultsToBasic() throws {
        let issuer = URL(string: "https://idp.example/realms/x")!
        #expect(
            OIDCDiscovery.documentURL(issuer: URL(string: "https://idp.example/realms/x/")!).absoluteString
                == "https://idp.example/realms/x/.well-known/openid-configuration")
        let o = try OIDCDiscovery.options(
            from: document(
                "https://idp.example/realms/x", #","revocation_endpoint":"https://idp.example/realms/x/revoke""#),
            issuer: issuer)
        #expect(
            o.authorizeURL == "https://idp.example/realms/x/authorize"
                && o.tokenURL == "https://idp.example/realms/x/token")
        #expect(
            o.revokeURL == "https://idp.example/realms/x/revoke" && o.deviceURL == nil && o.clientAuth == .basic
                && o.issuer == "https://idp.example/realms/x")
        let post = try OIDCDiscovery.options(
            from: document(
                "https://idp.example/realms/x",
                #","token_endpoint_auth_methods_supported":["client_secret_post"],"code_challenge_methods_supported":["plain"]"#
            ), issuer: issuer)
        #expect(post.clientAuth == .body && post.usesPKCE == false)
    }

    @Test func discoveryRefusesAnotherIssuerAndPlainHTTPEndpoints() {
        let issuer = URL(string: "https://idp.example")!
        #expect(throws: OAuthError.self) {
            try OIDCDiscovery.options(from: document("https://evil.example"), issuer: issuer)
        }
        var doc = document("https://idp.example")
        doc["token_endpoint"] = .string("http://idp.example/token")
        #expect(throws: OAuthError.self) { try OIDCDiscovery.options(from: doc, issuer: issuer) }
        // Plain http is fine on loopback when the issuer is too (a local test server).
        let local = URL(string: "http://127.0.0.1:9")!
        #expect(throws: Never.self) { try OIDCDiscovery.options(from: document("http://127.0.0.1:9"), issuer: local) }
    }
}
