import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct AuthorizationCodeTests {
    @Test func fullCodeFlowWithPKCE() async throws {
        try await withSandbox { h in
            #expect(h.base.host == "127.0.0.1")
            #expect(h.base.path == "/v1")
            let redirect = try await h.authorize(challenge: rfc7636Challenge)
            #expect(redirect["state"] == "st-123")
            #expect(redirect["error"] == nil)
            let code = try #require(redirect["code"])

            let reply = try await h.exchange(code: code, verifier: rfc7636Verifier)
            #expect(reply.status == 200)
            let json = reply.json
            #expect(
                Set(json.keys) == [
                    "access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type",
                ])
            #expect(json["expires_in"] as? Int == 1_209_599)
            #expect(json["refresh_token_expires_in"] as? Int == 7_776_000)
            #expect(json["token_type"] as? String == "Bearer")
            let access = try #require(json["access_token"] as? String)
            #expect(access.hasSuffix("_P0A1_org-1"))
            #expect(access != json["refresh_token"] as? String)

            let me = try await h.get("people/me", bearer: access)
            #expect(me.status == 200)
            #expect(me.json["id"] as? String == "person-1")
            #expect(me.json["emails"] as? [String] == ["pat@example.com"])
            #expect(me.json["displayName"] as? String == "Pat One")
            #expect(me.json["orgId"] as? String == "org-1")
            #expect(me.json["type"] as? String == "person")

            let counters = await h.sandbox.counters
            #expect(counters.codesIssued == 1)
            #expect(counters.codesRedeemed == 1)
            #expect(await h.sandbox.requests(to: "POST /v1/access_token") == 1)
        }
    }

    @Test func basicClientAuthenticationIsAccepted() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize()["code"])
            let reply = try await h.post(
                "access_token",
                form: [
                    "grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI,
                ], basic: (clientId, clientSecret))
            #expect(reply.status == 200)
            #expect(reply.json["access_token"] is String)
        }
    }

    @Test func wrongClientSecretIsInvalidClient() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize()["code"])
            let reply = try await h.post(
                "access_token",
                form: [
                    "grant_type": "authorization_code", "client_id": clientId, "client_secret": "nope", "code": code,
                    "redirect_uri": redirectURI,
                ])
            #expect(reply.status == 400)
            #expect(reply.json["error"] as? String == "invalid_client")
        }
    }

    @Test(arguments: [
        "http://127.0.0.1:8765/callback/", "http://localhost:8765/callback", "http://127.0.0.1:8766/callback",
    ])
    func unregisteredRedirectURIIsA400WithoutRedirect(uri: String) async throws {
        try await withSandbox { h in
            let reply = try await h.get(
                "authorize",
                query: [
                    "client_id": clientId, "response_type": "code", "redirect_uri": uri, "scope": "spark:people_read",
                    "state": "s",
                ])
            #expect(reply.status == 400)
            #expect(reply.header("Location") == nil)
            #expect(reply.json["trackingId"] is String)
            #expect(await h.sandbox.counters.codesIssued == 0)
        }
    }

    @Test func unknownClientIsA400WithoutRedirect() async throws {
        try await withSandbox { h in
            let reply = try await h.get(
                "authorize",
                query: [
                    "client_id": "someone-else", "response_type": "code", "redirect_uri": redirectURI,
                    "scope": "spark:people_read",
                ])
            #expect(reply.status == 400)
            #expect(reply.header("Location") == nil)
        }
    }

    @Test func unregisteredScopeRedirectsWithInvalidScope() async throws {
        try await withSandbox { h in
            let redirect = try await h.authorize(scope: "spark:people_read meeting:admin_schedule_write", state: "abc")
            #expect(redirect["error"] == "invalid_scope")
            #expect(redirect["state"] == "abc")
            #expect(redirect["code"] == nil)
        }
    }

    @Test func denyModeRedirectsWithAccessDenied() async throws {
        try await withSandbox({ $0.faults.denyConsent = true }) { h in
            let redirect = try await h.authorize(state: "xyz")
            #expect(redirect["error"] == "access_denied")
            #expect(redirect["state"] == "xyz")
            #expect(redirect["code"] == nil)
        }
    }

    @Test func loginHintChoosesTheApprovingUser() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize(extra: ["login_hint": "sam@example.com"])["code"])
            let access = try #require(try await h.exchange(code: code).json["access_token"] as? String)
            #expect(access.hasSuffix("_org-2"))
            #expect(try await h.get("people/me", bearer: access).json["id"] as? String == "person-2")
        }
    }

    @Test func codeIsSingleUse() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize()["code"])
            #expect(try await h.exchange(code: code).status == 200)
            let second = try await h.exchange(code: code)
            #expect(second.status == 400)
            #expect(second.json["error"] as? String == "invalid_grant")
            #expect(await h.sandbox.counters.codesRedeemed == 1)
        }
    }

    @Test func codeExpiresAfterTenMinutesBySandboxClock() async throws {
        try await withSandbox { h in
            let fresh = try #require(try await h.authorize()["code"])
            let stale = try #require(try await h.authorize()["code"])
            await h.sandbox.advanceClock(by: 599)
            #expect(try await h.exchange(code: fresh).status == 200)
            await h.sandbox.advanceClock(by: 2)
            let reply = try await h.exchange(code: stale)
            #expect(reply.status == 400)
            #expect(reply.json["error"] as? String == "invalid_grant")
        }
    }

    @Test func codeExchangeNeedsTheSameRedirectURI() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize()["code"])
            let reply = try await h.exchange(code: code, redirect: "http://127.0.0.1:9/other")
            #expect(reply.json["error"] as? String == "invalid_grant")
        }
    }

    @Test func pkceMismatchIsInvalidGrant() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize(challenge: rfc7636Challenge)["code"])
            let reply = try await h.exchange(code: code, verifier: String(repeating: "A", count: 43))
            #expect(reply.status == 400)
            #expect(reply.json["error"] as? String == "invalid_grant")
            // The failed attempt spent the code: the right verifier no longer helps.
            #expect(try await h.exchange(code: code, verifier: rfc7636Verifier).status == 400)
        }
    }

    @Test func pkceVerifierIsRequiredWhenAChallengeWasSent() async throws {
        try await withSandbox { h in
            let code = try #require(try await h.authorize(challenge: rfc7636Challenge)["code"])
            let reply = try await h.exchange(code: code)
            #expect(reply.json["error"] as? String == "invalid_grant")
        }
    }

    @Test func plainPKCEMethodIsRefused() async throws {
        try await withSandbox { h in
            let redirect = try await h.authorize(extra: [
                "code_challenge": rfc7636Verifier, "code_challenge_method": "plain",
            ])
            #expect(redirect["error"] == "invalid_request")
        }
    }

    @Test func unknownGrantTypeIsUnsupported() async throws {
        try await withSandbox { h in
            let reply = try await h.post(
                "access_token",
                form: [
                    "grant_type": "password", "client_id": clientId, "client_secret": clientSecret,
                ])
            #expect(reply.status == 400)
            #expect(reply.json["error"] as? String == "unsupported_grant_type")
        }
    }

    @Test func scopeIsReportedOnlyWhenConfigured() async throws {
        try await withSandbox({ $0.reportScopes = true }) { h in
            let code = try #require(try await h.authorize(scope: "spark:people_read spark:messages_read")["code"])
            let reply = try await h.exchange(code: code)
            #expect(reply.json["scope"] as? String == "spark:people_read spark:messages_read")
        }
    }
}
