import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct GoogleShapeTests {
    static let scopes = ["openid", "email", "profile", "https://www.googleapis.com/auth/drive.readonly"]

    func google(
        _ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        try await withShape(.google, scopes: Self.scopes, configure, body)
    }

    func authorize(
        _ h: Harness, redirect: String = redirectURI, extra: [String: String] = [:]
    ) async throws -> [String: String] {
        var query = [
            "client_id": clientId, "response_type": "code", "redirect_uri": redirect, "scope": "openid email",
            "state": "g-1",
        ]
        query.merge(extra) { $1 }
        return try await h.authorizeAt("/o/oauth2/v2/auth", query, redirect: redirect)
    }

    func exchange(_ h: Harness, _ code: String, redirect: String = redirectURI) async throws -> Harness.Reply {
        try await h.call(
            "POST", "/token",
            form: [
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": clientId,
                "client_secret": clientSecret,
            ])
    }

    static let expiredOrRevoked: [String: String] = [
        "error": "invalid_grant", "error_description": "Token has been expired or revoked.",
    ]

    @Test func codeRefreshUserinfoRevoke() async throws {
        try await google { h in
            // Any port of a registered loopback redirect URI (RFC 8252 §7.3).
            let loopback = "http://127.0.0.1:50123/callback"
            let redirect = try await authorize(
                h, redirect: loopback,
                extra: [
                    "access_type": "offline", "code_challenge": rfc7636Challenge, "code_challenge_method": "S256",
                ])
            #expect(redirect["state"] == "g-1")
            let code = try #require(redirect["code"])
            let exchanged = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": loopback, "client_id": clientId,
                    "client_secret": clientSecret, "code_verifier": rfc7636Verifier,
                ])
            #expect(exchanged.status == 200)
            #expect(Set(exchanged.json.keys) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"])
            #expect(exchanged.json["expires_in"] as? Int == 3599)
            #expect(exchanged.json["scope"] as? String == "openid email")
            #expect(exchanged.json["token_type"] as? String == "Bearer")
            let access = try #require(exchanged.json["access_token"] as? String)
            let refresh = try #require(exchanged.json["refresh_token"] as? String)
            #expect(access.hasPrefix("ya29."))
            #expect(refresh.hasPrefix("1//0"))

            // Refresh (client secret by HTTP Basic this time): no refresh_token in the answer, the same one stays valid.
            let refreshed = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "refresh_token", "refresh_token": refresh,
                ], basic: (clientId, clientSecret))
            #expect(refreshed.status == 200)
            #expect(Set(refreshed.json.keys) == ["access_token", "expires_in", "scope", "token_type"])
            #expect(refreshed.json["expires_in"] as? Int == 3599)
            let newAccess = try #require(refreshed.json["access_token"] as? String)
            #expect(newAccess != access)
            #expect(
                try await h.call(
                    "POST", "/token",
                    form: [
                        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": clientId,
                        "client_secret": clientSecret,
                    ]
                ).status == 200)
            #expect(await h.sandbox.uses(ofRefreshToken: refresh) == 2)

            let me = try await h.call("GET", "/v1/userinfo", bearer: newAccess)
            #expect(me.status == 200)
            #expect(Set(me.json.keys) == ["sub", "email", "email_verified", "name", "hd"])
            #expect(me.json["sub"] as? String == "person-1")
            #expect(me.json["email"] as? String == "pat@example.com")
            #expect(me.json["email_verified"] as? Bool == true)
            #expect(me.json["name"] as? String == "Pat One")
            #expect(me.json["hd"] as? String == "org-1")

            // RFC 7009: revoking the refresh token revokes the whole grant; unknown tokens also answer 200.
            #expect(try await h.call("POST", "/revoke", form: ["token": refresh]).status == 200)
            #expect(try await h.call("POST", "/revoke", form: ["token": "never-issued"]).status == 200)
            let refused = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "refresh_token", "refresh_token": refresh, "client_id": clientId,
                    "client_secret": clientSecret,
                ])
            #expect(refused.status == 400)
            #expect(refused.json as? [String: String] == Self.expiredOrRevoked)
            let gone = try await h.call("GET", "/v1/userinfo", bearer: newAccess)
            #expect(gone.status == 401)
            #expect(gone.header("WWW-Authenticate")?.contains("invalid_token") == true)
            #expect(await h.sandbox.requests(to: "POST /token") == 4)
            #expect(await h.sandbox.requests(to: "POST /revoke") == 2)
        }
    }

    @Test func refreshTokenOnlyOfflineAndOnFirstConsentUnlessPromptConsent() async throws {
        try await google { h in
            func refreshToken(_ extra: [String: String]) async throws -> String? {
                let code = try #require(try await authorize(h, extra: extra)["code"])
                let reply = try await exchange(h, code)
                #expect(reply.status == 200)
                #expect(reply.json["access_token"] is String)
                return reply.json["refresh_token"] as? String
            }
            // Online access (the default): none, and that was the first consent.
            #expect(try await refreshToken([:]) == nil)
            // Offline, but the user consented before: none.
            #expect(try await refreshToken(["access_type": "offline"]) == nil)
            // Offline with the consent screen shown again: one.
            #expect(try await refreshToken(["access_type": "offline", "prompt": "select_account consent"]) != nil)
            // Another user's first consent, offline: one.
            let first = try await refreshToken(["access_type": "offline", "login_hint": "sam@example.com"])
            #expect(first != nil)
            // Revoking forgets the consent: the next offline authorization is a first one again.
            #expect(try await h.call("POST", "/revoke", form: ["token": try #require(first)]).status == 200)
            #expect(try await refreshToken(["access_type": "offline", "login_hint": "sam@example.com"]) != nil)
        }
    }

    @Test func deviceFlowWithPendingAs428AndSlowDownAs403() async throws {
        try await google { h in
            let start = try await h.call(
                "POST", "/device/code", form: ["client_id": clientId, "scope": "openid email"])
            #expect(start.status == 200)
            #expect(Set(start.json.keys) == ["device_code", "expires_in", "interval", "user_code", "verification_url"])
            #expect(start.json["interval"] as? Int == 5)
            #expect(start.json["expires_in"] as? Int == 1800)
            #expect(start.json["verification_url"] as? String == h.origin + "/sandbox/device/verify")
            let userCode = try #require(start.json["user_code"] as? String)
            #expect(userCode.count == 9 && userCode.split(separator: "-").map(\.count) == [4, 4])
            let deviceCode = try #require(start.json["device_code"] as? String)
            func poll() async throws -> Harness.Reply {
                try await h.call(
                    "POST", "/token",
                    form: [
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode,
                        "client_id": clientId, "client_secret": clientSecret,
                    ])
            }
            let pending = try await poll()
            #expect(pending.status == 428)
            #expect(pending.json["error"] as? String == "authorization_pending")
            let tooFast = try await poll()
            #expect(tooFast.status == 403)
            #expect(tooFast.json["error"] as? String == "slow_down")

            let page = try await h.call("GET", "/sandbox/device/verify", query: ["user_code": userCode])
            #expect(page.status == 200)
            await h.sandbox.advanceClock(by: 10)
            let granted = try await poll()
            #expect(granted.status == 200)
            #expect(Set(granted.json.keys) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"])
            let access = try #require(granted.json["access_token"] as? String)
            #expect(try await h.call("GET", "/v1/userinfo", bearer: access).json["sub"] as? String == "person-1")
        }
    }

    @Test func loopbackRedirectsMatchOnAnyPortButNotOtherwise() async throws {
        try await google { h in
            for uri in [
                "http://127.0.0.1:9/other", "http://localhost:8765/callback", "https://127.0.0.1:8765/callback",
            ] {
                let reply = try await h.call(
                    "GET", "/o/oauth2/v2/auth",
                    query: [
                        "client_id": clientId, "response_type": "code", "redirect_uri": uri, "scope": "openid",
                    ])
                #expect(reply.status == 400, "\(uri)")
                #expect(reply.header("Location") == nil)
            }
            // The exchange must repeat the redirect URI of the authorization, port included.
            let code = try #require(try await authorize(h, redirect: "http://127.0.0.1:4000/callback")["code"])
            let reply = try await exchange(h, code, redirect: "http://127.0.0.1:4001/callback")
            #expect(reply.status == 400)
            #expect(reply.json as? [String: String] == ["error": "invalid_grant", "error_description": "Bad Request"])
        }
    }

    @Test func clientSecretInBodyOrBasicAndWrongSecretIs401() async throws {
        try await google { h in
            let code = try #require(try await authorize(h)["code"])
            let wrong = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI,
                ], basic: (clientId, "nope"))
            #expect(wrong.status == 401)
            #expect(
                wrong.json as? [String: String] == ["error": "invalid_client", "error_description": "Unauthorized"])
            let right = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI,
                ], basic: (clientId, clientSecret))
            #expect(right.status == 200)
        }
    }

    @Test func plainPKCEIsAccepted() async throws {
        try await google { h in
            let code = try #require(
                try await authorize(
                    h,
                    extra: [
                        "code_challenge": rfc7636Verifier, "code_challenge_method": "plain",
                    ])["code"])
            let reply = try await h.call(
                "POST", "/token",
                form: [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI,
                    "client_id": clientId,
                    "client_secret": clientSecret, "code_verifier": rfc7636Verifier,
                ])
            #expect(reply.status == 200)
        }
    }

    @Test func discoveryDocumentPointsAtTheSandbox() async throws {
        try await google { h in
            let reply = try await h.call("GET", "/.well-known/openid-configuration")
            #expect(reply.status == 200)
            let doc = reply.json
            #expect(doc["issuer"] as? String == h.origin)
            #expect(doc["authorization_endpoint"] as? String == h.origin + "/o/oauth2/v2/auth")
            #expect(doc["token_endpoint"] as? String == h.origin + "/token")
            #expect(doc["device_authorization_endpoint"] as? String == h.origin + "/device/code")
            #expect(doc["revocation_endpoint"] as? String == h.origin + "/revoke")
            #expect(doc["userinfo_endpoint"] as? String == h.origin + "/v1/userinfo")
            #expect(
                doc["token_endpoint_auth_methods_supported"] as? [String] == [
                    "client_secret_post", "client_secret_basic",
                ])
            #expect(doc["code_challenge_methods_supported"] as? [String] == ["S256", "plain"])
            let jwks = try await h.call("GET", "/oauth2/v3/certs")
            #expect(jwks.status == 200)
        }
    }
}
