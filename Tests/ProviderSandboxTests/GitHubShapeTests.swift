import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct GitHubShapeTests {
    func github(
        _ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        try await withShape(.github, scopes: ["repo", "gist"], configure, body)
    }

    func code(_ h: Harness, extra: [String: String] = [:]) async throws -> String {
        var query = ["client_id": clientId, "redirect_uri": redirectURI, "state": "gh"]
        query.merge(extra) { $1 }
        return try #require(try await h.authorizeAt("/login/oauth/authorize", query)["code"])
    }

    func token(_ h: Harness, _ form: [String: String], json: Bool) async throws -> Harness.Reply {
        try await h.call(
            "POST", "/login/oauth/access_token", form: form,
            headers: json ? ["Accept": "application/json"] : [:])
    }

    func refresh(_ h: Harness, _ refreshToken: String, json: Bool = true) async throws -> Harness.Reply {
        try await token(
            h,
            [
                "grant_type": "refresh_token", "refresh_token": refreshToken, "client_id": clientId,
                "client_secret": clientSecret,
            ], json: json)
    }

    func deleteToken(_ h: Harness, _ body: [String: String]?, basic: (String, String) = (clientId, clientSecret))
        async throws -> Harness.Reply
    {
        try await h.call("DELETE", "/applications/\(clientId)/token", json: body, basic: basic)
    }

    @Test func appCodeFormAnswerStrictRotationUserAndTokenDeletion() async throws {
        try await github { h in
            let authorizationCode = try await code(
                h, extra: ["code_challenge": rfc7636Challenge, "code_challenge_method": "S256"])
            // No grant_type and no Accept: the answer is form-encoded.
            let exchanged = try await token(
                h,
                [
                    "client_id": clientId, "client_secret": clientSecret, "code": authorizationCode,
                    "redirect_uri": redirectURI,
                    "code_verifier": rfc7636Verifier,
                ], json: false)
            #expect(exchanged.status == 200)
            #expect(exchanged.header("Content-Type")?.hasPrefix("application/x-www-form-urlencoded") == true)
            let fields = exchanged.formFields
            #expect(
                Set(fields.keys) == [
                    "access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "scope", "token_type",
                ])
            #expect(fields["expires_in"] == "28800")
            #expect(fields["refresh_token_expires_in"] == "15811200")
            #expect(fields["scope"] == "")
            #expect(fields["token_type"] == "bearer")
            let access = try #require(fields["access_token"])
            let firstRefresh = try #require(fields["refresh_token"])
            #expect(access.hasPrefix("ghu_"))
            #expect(firstRefresh.hasPrefix("ghr_"))

            let me = try await h.call("GET", "/user", bearer: access)
            #expect(me.status == 200)
            #expect(Set(me.json.keys) == ["id", "login", "name", "email"])
            #expect(me.json["id"] as? Int == 1)
            #expect(!(me.json["id"] is String))
            #expect(me.json["login"] as? String == "pat")
            #expect(me.json["name"] as? String == "Pat One")
            #expect(me.json["email"] as? String == "pat@example.com")

            // Strict rotation: the used refresh token and the access token issued with it stop working at once.
            let refreshed = try await refresh(h, firstRefresh)
            #expect(refreshed.status == 200)
            #expect(refreshed.header("Content-Type")?.hasPrefix("application/json") == true)
            #expect(refreshed.json["expires_in"] as? Int == 28800)
            let newAccess = try #require(refreshed.json["access_token"] as? String)
            let newRefresh = try #require(refreshed.json["refresh_token"] as? String)
            #expect(newRefresh != firstRefresh)
            #expect(try await h.call("GET", "/user", bearer: access).status == 401)
            let reused = try await refresh(h, firstRefresh)
            #expect(reused.status == 200)
            #expect(reused.json["error"] as? String == "bad_refresh_token")
            #expect(reused.json["access_token"] == nil)
            let reusedAsForm = try await refresh(h, firstRefresh, json: false)
            #expect(reusedAsForm.status == 200)
            #expect(reusedAsForm.formFields["error"] == "bad_refresh_token")
            #expect(await h.sandbox.uses(ofRefreshToken: firstRefresh) == 3)

            // Token deletion: Basic client credentials, JSON body; the whole authorization goes.
            #expect(try await deleteToken(h, ["access_token": newAccess], basic: (clientId, "wrong")).status == 401)
            #expect(try await deleteToken(h, [:]).status == 422)
            #expect(try await deleteToken(h, ["access_token": "gho_unknown"]).status == 404)
            let deleted = try await deleteToken(h, ["access_token": newAccess])
            #expect(deleted.status == 204)
            #expect(deleted.body.isEmpty)
            #expect(try await h.call("GET", "/user", bearer: newAccess).status == 401)
            let refused = try await refresh(h, newRefresh)
            #expect(refused.status == 200)
            #expect(refused.json["error"] as? String == "bad_refresh_token")
            #expect(await h.sandbox.requests(to: "DELETE /applications/{client_id}/token") == 4)
        }
    }

    @Test func tokenEndpointErrorsComeWithHTTP200() async throws {
        try await github { h in
            let badCode = try await token(
                h,
                [
                    "client_id": clientId, "client_secret": clientSecret, "code": "nope", "redirect_uri": redirectURI,
                ], json: false)
            #expect(badCode.status == 200)
            #expect(badCode.formFields["error"] == "bad_verification_code")
            #expect(badCode.formFields["error_description"] == "The code passed is incorrect or expired.")
            #expect(badCode.formFields["error_uri"]?.hasPrefix("https://docs.github.com/") == true)

            let authorizationCode = try await code(h)
            let badSecret = try await token(
                h,
                [
                    "client_id": clientId, "client_secret": "wrong", "code": authorizationCode,
                ], json: true)
            #expect(badSecret.status == 200)
            #expect(badSecret.json["error"] as? String == "incorrect_client_credentials")
            // redirect_uri may be left out of the exchange; the code survived the refused client.
            let exchanged = try await token(
                h, ["client_id": clientId, "client_secret": clientSecret, "code": authorizationCode], json: true)
            #expect(exchanged.json["access_token"] is String)
        }
    }

    @Test func wrongRedirectURIGoesBackToTheCallbackAsRedirectURIMismatch() async throws {
        try await github { h in
            let reply = try await h.call(
                "GET", "/login/oauth/authorize",
                query: [
                    "client_id": clientId, "redirect_uri": "http://127.0.0.1:9999/callback", "state": "s",
                ])
            #expect(reply.status == 302)
            let location = try #require(reply.header("Location"))
            #expect(location.hasPrefix(redirectURI + "?"))
            let query = queryFields(URLComponents(string: location)?.percentEncodedQuery ?? "")
            #expect(query["error"] == "redirect_uri_mismatch")
            #expect(query["state"] == "s")
            #expect(await h.sandbox.counters.codesIssued == 0)
        }
    }

    @Test func deviceFlowPollsWithHTTP200ErrorsAndRefreshesWithoutSecret() async throws {
        try await github { h in
            let start = try await h.call(
                "POST", "/login/device/code", form: ["client_id": clientId, "scope": "repo"],
                headers: ["Accept": "application/json"])
            #expect(start.status == 200)
            #expect(Set(start.json.keys) == ["device_code", "expires_in", "interval", "user_code", "verification_uri"])
            #expect(start.json["interval"] as? Int == 5)
            #expect(start.json["expires_in"] as? Int == 900)
            let verification = try #require(start.json["verification_uri"] as? String)
            #expect(verification == h.origin + "/sandbox/device/verify")
            let userCode = try #require(start.json["user_code"] as? String)
            let deviceCode = try #require(start.json["device_code"] as? String)
            func poll() async throws -> Harness.Reply {
                // GitHub's device polling sends no client secret.
                try await token(
                    h,
                    [
                        "client_id": clientId, "device_code": deviceCode,
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    ], json: true)
            }
            let pending = try await poll()
            #expect(pending.status == 200)
            #expect(pending.json["error"] as? String == "authorization_pending")
            let tooFast = try await poll()
            #expect(tooFast.status == 200)
            #expect(tooFast.json["error"] as? String == "slow_down")
            #expect(tooFast.json["interval"] as? Int == 10)

            #expect(try await h.call("GET", "/sandbox/device/verify", query: ["user_code": userCode]).status == 200)
            await h.sandbox.advanceClock(by: 10)
            let granted = try await poll()
            #expect(granted.status == 200)
            #expect(granted.json["scope"] as? String == "repo")
            let refresh = try #require(granted.json["refresh_token"] as? String)
            // A device-flow grant refreshes without the client secret.
            let refreshed = try await token(
                h,
                [
                    "client_id": clientId, "grant_type": "refresh_token", "refresh_token": refresh,
                ], json: true)
            #expect(refreshed.json["access_token"] is String)

            // Expired and denied device codes.
            let other = try #require(
                try await h.call(
                    "POST", "/login/device/code", form: ["client_id": clientId],
                    headers: ["Accept": "application/json"]
                ).json["device_code"] as? String)
            await h.sandbox.advanceClock(by: 900)
            let expired = try await token(
                h,
                [
                    "client_id": clientId, "device_code": other,
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                ], json: false)
            #expect(expired.status == 200)
            #expect(expired.formFields["error"] == "expired_token")
        }
    }

    @Test func deniedDeviceCodeIsAccessDenied() async throws {
        try await github({ $0.faults.denyConsent = true }) { h in
            let start = try await h.call("POST", "/login/device/code", form: ["client_id": clientId])
            // No Accept: the device answer is form-encoded too.
            let fields = start.formFields
            let userCode = try #require(fields["user_code"])
            #expect(try await h.call("GET", "/sandbox/device/verify", query: ["user_code": userCode]).status == 200)
            let denied = try await token(
                h,
                [
                    "client_id": clientId, "device_code": try #require(fields["device_code"]),
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                ], json: true)
            #expect(denied.status == 200)
            #expect(denied.json["error"] as? String == "access_denied")
        }
    }

    @Test func oauthAppTokensNeverExpireAndHaveNoRefreshToken() async throws {
        try await github({ $0.githubOAuthApp = true }) { h in
            let authorizationCode = try await code(h, extra: ["scope": "repo gist"])
            let reply = try await token(
                h, ["client_id": clientId, "client_secret": clientSecret, "code": authorizationCode], json: false)
            let fields = reply.formFields
            #expect(Set(fields.keys) == ["access_token", "scope", "token_type"])
            #expect(fields["scope"] == "repo,gist")
            let access = try #require(fields["access_token"])
            #expect(access.hasPrefix("gho_"))
            await h.sandbox.advanceClock(by: 10 * 365 * 86_400)
            #expect(try await h.call("GET", "/user", bearer: access).status == 200)
        }
    }
}
