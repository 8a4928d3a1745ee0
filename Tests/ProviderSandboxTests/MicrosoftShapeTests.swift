import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct MicrosoftShapeTests {
    static let scopes = ["openid", "profile", "email", "offline_access", "https://graph.microsoft.com/User.Read"]
    static let publicClientId = "public-cli"

    func microsoft(
        _ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        try await withShape(
            .microsoft, scopes: Self.scopes,
            {
                $0.clients.append(
                    .init(
                        clientId: Self.publicClientId, clientSecret: "public-secret-never-sent",
                        redirectURIs: ["http://localhost/callback"], scopes: Self.scopes, isPublic: true))
                configure(&$0)
            }, body)
    }

    func code(
        _ h: Harness, tenant: String = "common", client: String = clientId, redirect: String = redirectURI,
        scope: String = "openid profile email offline_access"
    ) async throws -> String {
        try #require(
            try await h.authorizeAt(
                "/\(tenant)/oauth2/v2.0/authorize",
                [
                    "client_id": client, "response_type": "code", "redirect_uri": redirect, "scope": scope,
                    "state": "m",
                ], redirect: redirect)["code"])
    }

    func token(_ h: Harness, tenant: String = "common", _ form: [String: String]) async throws -> Harness.Reply {
        try await h.call("POST", "/\(tenant)/oauth2/v2.0/token", form: form)
    }

    func refresh(_ h: Harness, _ refreshToken: String) async throws -> Harness.Reply {
        try await token(
            h,
            [
                "grant_type": "refresh_token", "refresh_token": refreshToken, "client_id": clientId,
                "client_secret": clientSecret,
            ])
    }

    /// The AADSTS error body: every field present, the description starting with the code.
    func expectAADSTS(_ reply: Harness.Reply, error: String, code: Int, status: Int = 400) {
        #expect(reply.status == status)
        #expect(
            Set(reply.json.keys) == [
                "error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id",
            ])
        #expect(reply.json["error"] as? String == error)
        #expect((reply.json["error_description"] as? String)?.hasPrefix("AADSTS\(code): ") == true)
        #expect(reply.json["error_codes"] as? [Int] == [code])
    }

    @Test func codeLenientRefreshUserinfoRevokeSignInSessions() async throws {
        try await microsoft { h in
            let authorizationCode = try await code(h, redirect: "http://127.0.0.1:61000/callback")
            let exchanged = try await token(
                h,
                [
                    "grant_type": "authorization_code", "code": authorizationCode,
                    "redirect_uri": "http://127.0.0.1:61000/callback",
                    "client_id": clientId, "client_secret": clientSecret,
                ])
            #expect(exchanged.status == 200)
            #expect(
                Set(exchanged.json.keys) == [
                    "access_token", "expires_in", "ext_expires_in", "refresh_token", "token_type",
                ])
            let expiresIn = try #require(exchanged.json["expires_in"] as? Int)
            #expect((3600...5400).contains(expiresIn))
            let access = try #require(exchanged.json["access_token"] as? String)
            let now = await h.sandbox.now
            #expect(await h.sandbox.accessTokenExpiry(access) == now.addingTimeInterval(TimeInterval(expiresIn)))
            let first = try #require(exchanged.json["refresh_token"] as? String)

            // Lenient rotation: a new refresh token every time, and the old one keeps working.
            let second = try #require(try await refresh(h, first).json["refresh_token"] as? String)
            #expect(second != first)
            let again = try await refresh(h, first)
            #expect(again.status == 200)
            let third = try #require(again.json["refresh_token"] as? String)
            #expect(Set([first, second, third]).count == 3)
            #expect(try await refresh(h, second).status == 200)
            #expect(await h.sandbox.uses(ofRefreshToken: first) == 2)
            #expect(await h.sandbox.counters.rotatedRefreshTokenReuses == 1)
            #expect(again.json["scope"] == nil)

            let me = try await h.call(
                "GET", "/oidc/userinfo", bearer: try #require(again.json["access_token"] as? String))
            #expect(me.status == 200)
            #expect(
                me.json as? [String: String] == [
                    "sub": "person-1", "name": "Pat One", "email": "pat@example.com", "given_name": "Pat",
                    "family_name": "One",
                ])

            // Graph's revokeSignInSessions kills every refresh token of the user.
            let revoked = try await h.call("POST", "/v1.0/me/revokeSignInSessions", bearer: access)
            #expect(revoked.status == 200)
            #expect(revoked.json["value"] as? Bool == true)
            expectAADSTS(try await refresh(h, third), error: "invalid_grant", code: 70000)
            expectAADSTS(try await refresh(h, first), error: "invalid_grant", code: 70000)
            #expect(try await h.call("GET", "/oidc/userinfo", bearer: access).status == 401)
            #expect(await h.sandbox.counters.requestsByTenant == ["common": 7])
            #expect(await h.sandbox.requests(to: "POST /{tenant}/oauth2/v2.0/token") == 6)
        }
    }

    @Test func tenantsAreRecordedAndNonsenseTenantsRefused() async throws {
        try await microsoft { h in
            let guid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
            for tenant in [guid, "contoso.onmicrosoft.com", "organizations", "consumers"] {
                let authorizationCode = try await code(h, tenant: tenant)
                let reply = try await token(
                    h, tenant: tenant,
                    [
                        "grant_type": "authorization_code", "code": authorizationCode, "redirect_uri": redirectURI,
                        "client_id": clientId, "client_secret": clientSecret,
                    ])
                #expect(reply.status == 200, "\(tenant)")
            }
            let nonsense = try await h.call(
                "GET", "/not_a_tenant/oauth2/v2.0/authorize", query: ["client_id": clientId])
            expectAADSTS(nonsense, error: "invalid_request", code: 90002)
            #expect(
                await h.sandbox.counters.requestsByTenant == [
                    guid: 2, "contoso.onmicrosoft.com": 2, "organizations": 2, "consumers": 2, "not_a_tenant": 1,
                ])
            #expect(await h.sandbox.requests(to: "GET /{tenant}/oauth2/v2.0/authorize") == 5)
        }
    }

    @Test func noOfflineAccessNoRefreshToken() async throws {
        try await microsoft { h in
            let authorizationCode = try await code(h, scope: "openid https://graph.microsoft.com/User.Read")
            let reply = try await token(
                h,
                [
                    "grant_type": "authorization_code", "code": authorizationCode, "redirect_uri": redirectURI,
                    "client_id": clientId, "client_secret": clientSecret,
                ])
            #expect(reply.status == 200)
            #expect(reply.json["access_token"] is String)
            #expect(reply.json["refresh_token"] == nil)
        }
    }

    @Test func publicClientSendsNoSecretAndConfidentialClientMust() async throws {
        try await microsoft { h in
            let redirect = "http://localhost:53682/callback"
            let authorizationCode = try await code(h, client: Self.publicClientId, redirect: redirect)
            let reply = try await token(
                h,
                [
                    "grant_type": "authorization_code", "code": authorizationCode, "redirect_uri": redirect,
                    "client_id": Self.publicClientId, "code_verifier": rfc7636Verifier,
                ])
            // The code had no challenge, so a verifier is refused; a fresh code without one works.
            expectAADSTS(reply, error: "invalid_grant", code: 70000)
            let fresh = try await code(h, client: Self.publicClientId, redirect: redirect)
            let accepted = try await token(
                h,
                [
                    "grant_type": "authorization_code", "code": fresh, "redirect_uri": redirect,
                    "client_id": Self.publicClientId,
                ])
            #expect(accepted.status == 200)
            let refresh = try #require(accepted.json["refresh_token"] as? String)
            #expect(
                try await token(
                    h,
                    [
                        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": Self.publicClientId,
                    ]
                ).status == 200)
            // A wrong secret is refused even from a public client.
            expectAADSTS(
                try await token(
                    h,
                    [
                        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": Self.publicClientId,
                        "client_secret": "wrong",
                    ]), error: "invalid_client", code: 7_000_215, status: 401)
            // A confidential client without its secret is refused.
            expectAADSTS(
                try await token(
                    h,
                    [
                        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": clientId,
                    ]), error: "invalid_client", code: 7_000_218, status: 401)
        }
    }

    @Test func deviceFlowHasAMessageAndDeclinesWithAuthorizationDeclined() async throws {
        try await microsoft { h in
            func start() async throws -> (device: String, user: String, reply: Harness.Reply) {
                let reply = try await h.call(
                    "POST", "/organizations/oauth2/v2.0/devicecode",
                    form: [
                        "client_id": Self.publicClientId, "scope": "openid offline_access",
                    ])
                #expect(reply.status == 200)
                return (
                    try #require(reply.json["device_code"] as? String),
                    try #require(reply.json["user_code"] as? String), reply
                )
            }
            func poll(_ deviceCode: String) async throws -> Harness.Reply {
                try await token(
                    h, tenant: "organizations",
                    [
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode,
                        "client_id": Self.publicClientId,
                    ])
            }
            let approved = try await start()
            #expect(
                Set(approved.reply.json.keys) == [
                    "device_code", "expires_in", "interval", "message", "user_code", "verification_uri",
                ])
            let uri = try #require(approved.reply.json["verification_uri"] as? String)
            #expect(uri == h.origin + "/sandbox/device/verify")
            #expect((approved.reply.json["message"] as? String)?.contains(approved.user) == true)
            #expect(approved.reply.json["expires_in"] as? Int == 900)
            expectAADSTS(try await poll(approved.device), error: "authorization_pending", code: 70016)
            #expect(
                try await h.call("GET", "/sandbox/device/verify", query: ["user_code": approved.user]).status == 200)
            await h.sandbox.advanceClock(by: 5)
            let granted = try await poll(approved.device)
            #expect(granted.status == 200)
            #expect(granted.json["refresh_token"] is String)
            expectAADSTS(try await poll(approved.device), error: "bad_verification_code", code: 70000)

            await h.sandbox.updateConfiguration { $0.faults.denyConsent = true }
            let declined = try await start()
            #expect(
                try await h.call("GET", "/sandbox/device/verify", query: ["user_code": declined.user]).status == 200)
            expectAADSTS(try await poll(declined.device), error: "authorization_declined", code: 70000)

            let expired = try await start()
            await h.sandbox.advanceClock(by: 900)
            expectAADSTS(try await poll(expired.device), error: "expired_token", code: 70020)
        }
    }
}
