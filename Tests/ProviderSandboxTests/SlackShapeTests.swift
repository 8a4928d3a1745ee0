import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct SlackShapeTests {
    func slack(
        _ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        try await withShape(.slack, scopes: ["users:read", "chat:write", "channels:history"], configure, body)
    }

    func code(_ h: Harness) async throws -> String {
        try #require(
            try await h.authorizeAt(
                "/oauth/v2/authorize",
                [
                    "client_id": clientId, "user_scope": "users:read,chat:write", "scope": "commands",
                    "redirect_uri": redirectURI, "state": "sl",
                ])["code"])
    }

    func access(_ h: Harness, _ form: [String: String], basic: Bool = true) async throws -> Harness.Reply {
        var form = form
        if !basic {
            form["client_id"] = clientId
            form["client_secret"] = clientSecret
        }
        return try await h.call(
            "POST", "/api/oauth.v2.access", form: form, basic: basic ? (clientId, clientSecret) : nil)
    }

    func refresh(_ h: Harness, _ token: String) async throws -> Harness.Reply {
        try await access(h, ["grant_type": "refresh_token", "refresh_token": token], basic: false)
    }

    /// Every Slack answer is HTTP 200; failures are `{"ok":false,"error":…}` and nothing else.
    func expectFailure(_ reply: Harness.Reply, _ error: String) {
        #expect(reply.status == 200)
        #expect(reply.json.count == 2)
        #expect(reply.json["ok"] as? Bool == false)
        #expect(reply.json["error"] as? String == error)
    }

    @Test func userTokenUnderAuthedUserThenRotationAuthTestRevoke() async throws {
        try await slack { h in
            let code = try await code(h)
            let exchanged = try await access(h, ["code": code, "redirect_uri": redirectURI])
            #expect(exchanged.status == 200)
            #expect(Set(exchanged.json.keys) == ["ok", "app_id", "authed_user", "team"])
            #expect(exchanged.json["ok"] as? Bool == true)
            #expect((exchanged.json["app_id"] as? String)?.hasPrefix("A") == true)
            #expect(exchanged.json["access_token"] == nil)
            #expect(exchanged.json["team"] as? [String: String] == ["id": "org-1", "name": "org-1"])
            let user = try #require(exchanged.json["authed_user"] as? [String: Any])
            #expect(Set(user.keys) == ["id", "scope", "access_token", "token_type", "refresh_token", "expires_in"])
            #expect(user["id"] as? String == "person-1")
            #expect(user["scope"] as? String == "users:read,chat:write")
            #expect(user["token_type"] as? String == "user")
            #expect(user["expires_in"] as? Int == 43200)
            let accessToken = try #require(user["access_token"] as? String)
            let refreshToken = try #require(user["refresh_token"] as? String)
            #expect(accessToken.hasPrefix("xoxe.xoxp-1-"))
            #expect(refreshToken.hasPrefix("xoxe-1-"))

            // A refresh answers at the top level, with a new refresh token; the old one is dead at once.
            let refreshed = try await refresh(h, refreshToken)
            #expect(refreshed.status == 200)
            #expect(
                Set(refreshed.json.keys) == [
                    "ok", "access_token", "token_type", "scope", "refresh_token", "expires_in", "team",
                ])
            #expect(refreshed.json["token_type"] as? String == "user")
            #expect(refreshed.json["expires_in"] as? Int == 43200)
            let newAccess = try #require(refreshed.json["access_token"] as? String)
            let newRefresh = try #require(refreshed.json["refresh_token"] as? String)
            #expect(newRefresh != refreshToken)
            expectFailure(try await refresh(h, refreshToken), "invalid_refresh_token")

            let test = try await h.call("POST", "/api/auth.test", bearer: newAccess)
            #expect(test.status == 200)
            #expect(Set(test.json.keys) == ["ok", "url", "team", "user", "team_id", "user_id"])
            #expect(test.json["ok"] as? Bool == true)
            #expect(test.json["url"] as? String == "https://org-1.slack.com/")
            #expect(test.json["team"] as? String == "org-1")
            #expect(test.json["user"] as? String == "pat")
            #expect(test.json["team_id"] as? String == "org-1")
            #expect(test.json["user_id"] as? String == "person-1")

            let revoked = try await h.call("POST", "/api/auth.revoke", bearer: newAccess)
            #expect(revoked.status == 200)
            #expect(revoked.json as? [String: Bool] == ["ok": true, "revoked": true])
            expectFailure(try await h.call("POST", "/api/auth.test", bearer: newAccess), "token_revoked")
            expectFailure(try await refresh(h, newRefresh), "invalid_refresh_token")
            #expect(await h.sandbox.uses(ofRefreshToken: refreshToken) == 2)
        }
    }

    @Test func failuresAreOkFalseWithHTTP200() async throws {
        try await slack { h in
            expectFailure(try await access(h, ["code": "nope", "redirect_uri": redirectURI]), "invalid_code")
            let code = try await code(h)
            expectFailure(
                try await h.call(
                    "POST", "/api/oauth.v2.access", form: ["code": code],
                    basic: ("nobody", clientSecret)), "invalid_client_id")
            expectFailure(
                try await h.call(
                    "POST", "/api/oauth.v2.access", form: ["code": code],
                    basic: (clientId, "wrong")), "bad_client_secret")
            // A redirect_uri that is sent must be the authorization's.
            expectFailure(try await access(h, ["code": code, "redirect_uri": "http://127.0.0.1:1/x"]), "invalid_code")
            expectFailure(try await h.call("POST", "/api/auth.test", bearer: "xoxp-unknown"), "invalid_auth")
            expectFailure(try await h.call("POST", "/api/auth.test"), "not_authed")
            expectFailure(
                try await access(h, ["grant_type": "urn:ietf:params:oauth:grant-type:device_code"]),
                "invalid_grant_type")
        }
    }

    @Test func expiredAccessTokenIsTokenExpired() async throws {
        try await slack { h in
            let exchanged = try await access(h, ["code": try await code(h)], basic: false)
            let user = try #require(exchanged.json["authed_user"] as? [String: Any])
            let token = try #require(user["access_token"] as? String)
            await h.sandbox.advanceClock(by: 43200)
            expectFailure(try await h.call("POST", "/api/auth.test", bearer: token), "token_expired")
            // auth.revoke with test=1 pretends only.
            let refreshToken = try #require(user["refresh_token"] as? String)
            let fresh = try #require(try await refresh(h, refreshToken).json["access_token"] as? String)
            let dryRun = try await h.call("POST", "/api/auth.revoke", form: ["test": "1"], bearer: fresh)
            #expect(dryRun.json as? [String: Bool] == ["ok": true, "revoked": false])
            #expect(try await h.call("POST", "/api/auth.test", bearer: fresh).json["ok"] as? Bool == true)
        }
    }

    @Test func noDeviceFlowAndNoVerifyPage() async throws {
        try await slack { h in
            let reply = try await h.call("GET", "/sandbox/device/verify", query: ["user_code": "ABCD-EFGH"])
            #expect(reply.status == 404)
            #expect(await h.sandbox.requests(to: "other") == 1)
        }
    }
}
