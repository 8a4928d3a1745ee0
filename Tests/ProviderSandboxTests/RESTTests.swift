import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct RESTTests {
    @Test func peopleMeRefusesBadAndExpiredTokensWithATrackingId() async throws {
        try await withSandbox { h in
            let missing = try await h.get("people/me")
            #expect(missing.status == 401)
            let bad = try await h.get("people/me", bearer: "nonsense")
            #expect(bad.status == 401)
            #expect(bad.json["message"] is String)
            let errors = try #require(bad.json["errors"] as? [[String: Any]])
            #expect(errors.first?["description"] is String)
            let trackingId = try #require(bad.json["trackingId"] as? String)
            #expect(bad.header("trackingid") == trackingId)

            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-2")
            #expect(try await h.get("people/me", bearer: pair.accessToken).status == 200)
            await h.sandbox.advanceClock(by: 1_209_599)
            #expect(try await h.get("people/me", bearer: pair.accessToken).status == 401)
        }
    }

    @Test func peopleMeNeedsPeopleReadScope() async throws {
        try await withSandbox { h in
            let pair = try await h.sandbox.issueTokenPair(
                clientId: clientId, userId: "person-1", scopes: ["spark:messages_read"])
            let reply = try await h.get("people/me", bearer: pair.accessToken)
            #expect(reply.status == 403)
            #expect(reply.json["trackingId"] is String)
        }
    }

    @Test func deleteAuthorizationsRevokesEveryTokenOfThatUserForThatClient() async throws {
        try await withSandbox { h in
            let admin = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let second = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let otherUser = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-2")

            let reply = try await h.delete("authorizations", query: ["clientId": clientId], bearer: admin.accessToken)
            #expect(reply.status == 204)
            #expect(try await h.refresh(admin.refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await h.refresh(second.refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await h.get("people/me", bearer: second.accessToken).status == 401)
            #expect(try await h.refresh(otherUser.refreshToken).status == 200)
        }
    }

    @Test func deleteAuthorizationsNeedsTokensWriteScope() async throws {
        try await withSandbox { h in
            let pair = try await h.sandbox.issueTokenPair(
                clientId: clientId, userId: "person-1", scopes: ["spark:people_read"])
            let reply = try await h.delete("authorizations", query: ["clientId": clientId], bearer: pair.accessToken)
            #expect(reply.status == 403)
            #expect(reply.json["trackingId"] is String)
            #expect(try await h.refresh(pair.refreshToken).status == 200)
        }
    }

    @Test func listAndDeleteOneAuthorizationById() async throws {
        try await withSandbox { h in
            let admin = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let target = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-2")
            let list = try await h.get(
                "authorizations", query: ["personEmail": "sam@example.com"], bearer: admin.accessToken)
            #expect(list.status == 200)
            let items = try #require(list.json["items"] as? [[String: Any]])
            #expect(items.count == 1)
            #expect(items.first?["applicationId"] as? String == clientId)
            let id = try #require(items.first?["id"] as? String)

            #expect(try await h.delete("authorizations/\(id)", bearer: admin.accessToken).status == 204)
            #expect(try await h.refresh(target.refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await h.delete("authorizations/\(id)", bearer: admin.accessToken).status == 404)
            #expect(await h.sandbox.requests(to: "DELETE /v1/authorizations/{id}") == 2)
        }
    }

    @Test func tokenExpiryIsEpochMillisecondsBySandboxClock() async throws {
        try await withSandbox { h in
            await h.sandbox.setNow(Date(timeIntervalSince1970: 1_700_000_000))
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            let reply = try await h.get("authorizations/tokenExpiry", bearer: pair.accessToken)
            #expect(reply.status == 200)
            let exp = try #require(reply.json["exp"] as? Int)
            #expect(exp == 1_701_209_599_000)
        }
    }

    @Test func unknownPathIsARestLayer404() async throws {
        try await withSandbox { h in
            let reply = try await h.get("rooms")
            #expect(reply.status == 404)
            #expect(reply.json["trackingId"] is String)
        }
    }
}
