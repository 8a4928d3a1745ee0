import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct OIDCShapeTests {
    func oidc(
        _ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        try await withShape(.oidc, scopes: ["openid", "email", "profile", "offline_access"], configure, body)
    }

    func token(_ h: Harness, _ form: [String: String]) async throws -> Harness.Reply {
        try await h.call("POST", "/token", form: form, basic: (clientId, clientSecret))
    }

    func expectInvalidClient(_ reply: Harness.Reply) {
        #expect(reply.status == 401)
        #expect(reply.json["error"] as? String == "invalid_client")
        #expect(reply.header("WWW-Authenticate")?.hasPrefix("Basic") == true)
    }

    @Test func discoveryDocumentNamesTheOriginAndBasicOnly() async throws {
        try await oidc { h in
            let doc = try await h.call("GET", "/.well-known/openid-configuration").json
            #expect(doc["issuer"] as? String == h.origin)
            #expect(doc["authorization_endpoint"] as? String == h.origin + "/authorize")
            #expect(doc["token_endpoint"] as? String == h.origin + "/token")
            #expect(doc["device_authorization_endpoint"] as? String == h.origin + "/device_authorization")
            #expect(doc["revocation_endpoint"] as? String == h.origin + "/revoke")
            #expect(doc["userinfo_endpoint"] as? String == h.origin + "/userinfo")
            #expect(doc["jwks_uri"] as? String == h.origin + "/jwks")
            #expect(doc["token_endpoint_auth_methods_supported"] as? [String] == ["client_secret_basic"])
            #expect(doc["code_challenge_methods_supported"] as? [String] == ["S256"])
            #expect(try await h.call("GET", "/jwks").status == 200)
        }
    }

    @Test func aDifferentIssuerCanBeServedForRefusalTests() async throws {
        try await oidc({ $0.discoveryIssuer = "https://issuer.example" }) { h in
            let doc = try await h.call("GET", "/.well-known/openid-configuration").json
            #expect(doc["issuer"] as? String == "https://issuer.example")
            #expect(doc["token_endpoint"] as? String == h.origin + "/token")
        }
    }

    @Test func codeFlowBasicOnlyRotationFromConfigurationRevoke() async throws {
        try await oidc({ $0.rotation = .on }) { h in
            let loopback = "http://127.0.0.1:40404/callback"
            let code = try #require(
                try await h.authorizeAt(
                    "/authorize",
                    [
                        "client_id": clientId, "response_type": "code", "redirect_uri": loopback,
                        "scope": "openid email",
                        "state": "o", "code_challenge": rfc7636Challenge, "code_challenge_method": "S256",
                    ], redirect: loopback)["code"])
            // A secret in the body is refused: this provider takes HTTP Basic only.
            expectInvalidClient(
                try await h.raw(
                    "/token",
                    form: [
                        "grant_type": "authorization_code", "code": code, "redirect_uri": loopback,
                        "client_id": clientId,
                        "client_secret": clientSecret, "code_verifier": rfc7636Verifier,
                    ]))
            expectInvalidClient(
                try await h.raw(
                    "/token",
                    form: [
                        "grant_type": "authorization_code", "code": code, "redirect_uri": loopback,
                        "code_verifier": rfc7636Verifier,
                    ], basic: (clientId, "wrong")))
            let exchanged = try await token(
                h,
                [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": loopback,
                    "code_verifier": rfc7636Verifier,
                ])
            #expect(exchanged.status == 200)
            #expect(exchanged.header("Cache-Control") == "no-store")
            #expect(Set(exchanged.json.keys) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"])
            #expect(exchanged.json["expires_in"] as? Int == 3600)
            #expect(exchanged.json["scope"] as? String == "openid email")
            let first = try #require(exchanged.json["refresh_token"] as? String)

            let refreshed = try await token(h, ["grant_type": "refresh_token", "refresh_token": first])
            let second = try #require(refreshed.json["refresh_token"] as? String)
            #expect(second != first)
            let reused = try await token(h, ["grant_type": "refresh_token", "refresh_token": first])
            #expect(reused.status == 400)
            #expect(reused.json["error"] as? String == "invalid_grant")
            #expect(await h.sandbox.counters.rotatedRefreshTokenReuses == 1)

            let access = try #require(refreshed.json["access_token"] as? String)
            let me = try await h.call("GET", "/userinfo", bearer: access)
            #expect(me.json as? [String: String] == ["sub": "person-1", "email": "pat@example.com", "name": "Pat One"])

            // RFC 7009: client authenticated as at the token endpoint; 200 also for unknown tokens.
            expectInvalidClient(
                try await h.raw(
                    "/revoke",
                    form: [
                        "token": second, "client_id": clientId,
                        "client_secret": clientSecret,
                    ]))
            let revoked = try await h.call(
                "POST", "/revoke", form: ["token": second, "token_type_hint": "refresh_token"],
                basic: (clientId, clientSecret))
            #expect(revoked.status == 200)
            #expect(
                try await h.call("POST", "/revoke", form: ["token": "unknown"], basic: (clientId, clientSecret)).status
                    == 200)
            let refused = try await token(h, ["grant_type": "refresh_token", "refresh_token": second])
            #expect(refused.status == 400)
            #expect(refused.json["error"] as? String == "invalid_grant")
            #expect(try await h.call("GET", "/userinfo", bearer: access).status == 401)
        }
    }

    @Test func rotationOffByDefault() async throws {
        try await oidc { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-2")
            let reply = try await token(h, ["grant_type": "refresh_token", "refresh_token": pair.refreshToken])
            #expect(reply.json["refresh_token"] as? String == pair.refreshToken)
            let access = try #require(reply.json["access_token"] as? String)
            #expect(try await h.call("GET", "/userinfo", bearer: access).json["sub"] as? String == "person-2")
        }
    }

    @Test func deviceFlowWithCompleteVerificationURI() async throws {
        try await oidc { h in
            let start = try await h.call(
                "POST", "/device_authorization", form: ["scope": "openid offline_access"],
                basic: (clientId, clientSecret))
            #expect(start.status == 200)
            #expect(
                Set(start.json.keys) == [
                    "device_code", "expires_in", "interval", "user_code", "verification_uri",
                    "verification_uri_complete",
                ])
            #expect(start.json["verification_uri"] as? String == h.origin + "/sandbox/device/verify")
            let deviceCode = try #require(start.json["device_code"] as? String)
            let poll = ["grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode]
            let pending = try await token(h, poll)
            #expect(pending.status == 400)
            #expect(pending.json["error"] as? String == "authorization_pending")
            let complete = try #require((start.json["verification_uri_complete"] as? String).flatMap(URL.init(string:)))
            #expect(try await h.send(URLRequest(url: complete)).status == 200)
            await h.sandbox.advanceClock(by: 5)
            let granted = try await token(h, poll)
            #expect(granted.status == 200)
            #expect(granted.json["scope"] as? String == "openid offline_access")
            #expect(granted.json["refresh_token"] is String)
        }
    }
}
