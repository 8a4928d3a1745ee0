import Foundation
import Testing

@testable import ProviderSandbox

let refusal = "The refresh token provided is expired, revoked, malformed, or invalid."

@Suite struct RefreshTests {
    @Test func rotationOffReturnsTheSameRefreshTokenWithItsLifetimeReset() async throws {
        try await withSandbox { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            await h.sandbox.advanceClock(by: 86_400)
            let reply = try await h.refresh(pair.refreshToken)
            #expect(reply.status == 200)
            #expect(reply.json["refresh_token"] as? String == pair.refreshToken)
            #expect(reply.json["refresh_token_expires_in"] as? Int == 7_776_000)
            #expect(reply.json["expires_in"] as? Int == 1_209_599)
            let newAccess = try #require(reply.json["access_token"] as? String)
            #expect(newAccess != pair.accessToken)
            #expect(reply.json["scope"] == nil)
            // Used again later, it still works: Webex does not rotate.
            #expect(try await h.refresh(pair.refreshToken).status == 200)
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refreshToken) == 2)
            #expect(await h.sandbox.counters.refreshGrants == 2)
            #expect(await h.sandbox.counters.rotatedRefreshTokenReuses == 0)
        }
    }

    @Test func rotationOnInvalidatesTheOldRefreshTokenAtOnce() async throws {
        try await withSandbox({ $0.rotation = .on }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let first = try await h.refresh(pair.refreshToken)
            #expect(first.status == 200)
            let next = try #require(first.json["refresh_token"] as? String)
            #expect(next != pair.refreshToken)

            let reuse = try await h.refresh(pair.refreshToken)
            #expect(reuse.status == 400)
            #expect(reuse.json["error"] as? String == "invalid_grant")
            #expect(reuse.json["error_description"] as? String == refusal)
            #expect(await h.sandbox.counters.rotatedRefreshTokenReuses == 1)
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refreshToken) == 2)

            #expect(try await h.refresh(next).status == 200)
            #expect(await h.sandbox.uses(ofRefreshToken: next) == 1)
        }
    }

    @Test func graceAcceptsTheOldTokenWithinTheWindowThenRefusesIt() async throws {
        try await withSandbox({ $0.rotation = .grace(seconds: 30) }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let first = try await h.refresh(pair.refreshToken)
            let newAccess = try #require(first.json["access_token"] as? String)
            let newRefresh = try #require(first.json["refresh_token"] as? String)
            #expect(newRefresh != pair.refreshToken)

            await h.sandbox.advanceClock(by: 29)
            let again = try await h.refresh(pair.refreshToken)
            #expect(again.status == 200)
            #expect(again.json["access_token"] as? String == newAccess)
            #expect(again.json["refresh_token"] as? String == newRefresh)

            await h.sandbox.advanceClock(by: 2)
            let late = try await h.refresh(pair.refreshToken)
            #expect(late.status == 400)
            #expect(late.json["error"] as? String == "invalid_grant")
            #expect(await h.sandbox.counters.rotatedRefreshTokenReuses == 2)
            #expect(try await h.refresh(newRefresh).status == 200)
        }
    }

    @Test func expiredRefreshTokenIsInvalidGrant() async throws {
        try await withSandbox({ $0.refreshTokenLifetime = 100 }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            await h.sandbox.advanceClock(by: 100)
            let reply = try await h.refresh(pair.refreshToken)
            #expect(reply.json["error"] as? String == "invalid_grant")
            #expect(reply.json["error_description"] as? String == refusal)
        }
    }

    @Test func revokedAndExpiredByHookAreInvalidGrant() async throws {
        try await withSandbox { h in
            let revoked = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let expired = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-2")
            try await h.sandbox.revokeRefreshToken(revoked.refreshToken)
            try await h.sandbox.expireRefreshToken(expired.refreshToken)
            #expect(try await h.refresh(revoked.refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await h.refresh(expired.refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await h.refresh("never-issued").json["error"] as? String == "invalid_grant")
            #expect(await h.sandbox.counters.successfulRefreshes == 0)
        }
    }

    @Test func refreshTokenOfAnotherClientIsInvalidGrant() async throws {
        try await withSandbox({
            $0.clients.append(
                .init(clientId: "other", clientSecret: "o", redirectURIs: [], scopes: ["spark:people_read"]))
        }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: "other", userId: "person-1")
            #expect(try await h.refresh(pair.refreshToken).json["error"] as? String == "invalid_grant")
        }
    }

    @Test func everyNthTokenRequestIs429WithRetryAfter() async throws {
        try await withSandbox({
            $0.faults.tooManyRequestsEvery = 3
            $0.faults.retryAfterSeconds = 7
        }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            var statuses: [Int] = []
            for _ in 0..<6 {
                let reply = try await h.refresh(pair.refreshToken)
                statuses.append(reply.status)
                if reply.status == 429 {
                    #expect(reply.header("Retry-After") == "7")
                    #expect(reply.json["trackingId"] is String)
                }
            }
            #expect(statuses == [200, 200, 429, 200, 200, 429])
            #expect(await h.sandbox.counters.tooManyRequestsAnswered == 2)
            // Faulted requests never reached the grant.
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refreshToken) == 4)
        }
    }

    @Test func everyNthTokenRequestIs503() async throws {
        try await withSandbox({ $0.faults.serviceUnavailableEvery = 2 }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(try await h.refresh(pair.refreshToken).status) }
            #expect(statuses == [200, 503, 200, 503])
        }
    }

    @Test func htmlGarbageAnswers200WithAWebPage() async throws {
        try await withSandbox({ $0.faults.htmlGarbage = true }) { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let reply = try await h.refresh(pair.refreshToken)
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(reply.text.contains("<html>"))
            #expect((try? JSONSerialization.jsonObject(with: reply.body)) == nil)
            // The fault can be switched off while running.
            await h.sandbox.updateConfiguration { $0.faults.htmlGarbage = false }
            #expect(try await h.refresh(pair.refreshToken).json["access_token"] is String)
        }
    }
}
