import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct DeviceGrantTests {
    func poll(_ h: Harness, _ deviceCode: String) async throws -> Harness.Reply {
        try await h.post(
            "device/token",
            form: [
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode,
                "client_id": clientId,
            ], basic: (clientId, clientSecret))
    }

    @Test func pendingThenSlowDownThenApprovedThenToken() async throws {
        try await withSandbox { h in
            let start = try await h.post(
                "device/authorize", form: ["client_id": clientId, "scope": "spark:people_read"])
            #expect(start.status == 200)
            let deviceCode = try #require(start.json["device_code"] as? String)
            let userCode = try #require(start.json["user_code"] as? String)
            #expect(userCode.count == 6)
            #expect(start.json["interval"] as? Int == 2)
            #expect(start.json["expires_in"] as? Int == 300)
            #expect((start.json["verification_uri"] as? String)?.hasPrefix(h.base.absoluteString) == true)
            #expect(start.json["verification_uri_complete"] is String)

            let pending = try await poll(h, deviceCode)
            #expect(pending.status == 428)
            #expect(pending.json["error"] as? String == "authorization_pending")

            let tooSoon = try await poll(h, deviceCode)
            #expect(tooSoon.status == 400)
            #expect(tooSoon.json["error"] as? String == "slow_down")

            #expect(await h.sandbox.approveDevice(userCode: userCode))
            await h.sandbox.advanceClock(by: 7)  // the interval grew by 5 after slow_down
            let granted = try await poll(h, deviceCode)
            #expect(granted.status == 200)
            let access = try #require(granted.json["access_token"] as? String)
            #expect(granted.json["refresh_token"] is String)
            #expect(granted.json["scope"] as? String == "spark:people_read")
            #expect(try await h.get("people/me", bearer: access).status == 200)

            await h.sandbox.advanceClock(by: 7)
            #expect(try await poll(h, deviceCode).json["error"] as? String == "invalid_grant")
        }
    }

    @Test func verificationURIApprovesWhenOpened() async throws {
        try await withSandbox { h in
            let start = try await h.post(
                "device/authorize", form: ["client_id": clientId, "scope": "spark:people_read"])
            let deviceCode = try #require(start.json["device_code"] as? String)
            let complete = try #require((start.json["verification_uri_complete"] as? String).flatMap(URL.init(string:)))
            let page = try await h.send(URLRequest(url: complete))
            #expect(page.status == 200)
            #expect(try await poll(h, deviceCode).status == 200)
        }
    }

    @Test func deviceCodeExpires() async throws {
        try await withSandbox { h in
            let start = try await h.post(
                "device/authorize", form: ["client_id": clientId, "scope": "spark:people_read"])
            let deviceCode = try #require(start.json["device_code"] as? String)
            await h.sandbox.advanceClock(by: 300)
            #expect(try await poll(h, deviceCode).json["error"] as? String == "expired_token")
        }
    }

    @Test func deviceTokenNeedsClientAuthentication() async throws {
        try await withSandbox { h in
            let start = try await h.post(
                "device/authorize", form: ["client_id": clientId, "scope": "spark:people_read"])
            let deviceCode = try #require(start.json["device_code"] as? String)
            let reply = try await h.post(
                "device/token",
                form: [
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": deviceCode,
                    "client_id": clientId,
                ])
            #expect(reply.json["error"] as? String == "invalid_client")
        }
    }

    @Test func deviceAuthorizeRefusesUnknownClientAndScope() async throws {
        try await withSandbox { h in
            let unknown = try await h.post(
                "device/authorize", form: ["client_id": "nobody", "scope": "spark:people_read"])
            #expect(unknown.status == 400)
            #expect(unknown.json["trackingId"] is String)
            let scope = try await h.post("device/authorize", form: ["client_id": clientId, "scope": "spark:all"])
            #expect(scope.status == 400)
        }
    }
}

@Suite struct LoadTests {
    @Test func holdsEightyConcurrentConnections() async throws {
        // The gate holds every request until all 80 are in: the count does not depend on how fast the machine
        // sends them. The deadline only turns a server that cannot hold 80 into a failure instead of a hang.
        try await withSandbox { h in
            var pairs: [(accessToken: String, refreshToken: String)] = []
            for _ in 0..<80 {
                pairs.append(try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1"))
            }
            await h.sandbox.closeGate()
            // Each request's failure is caught in its own task, never thrown out of the group: a group that cancels
            // its URLSession tasks can deadlock in FoundationNetworking on Linux (URLSessionTask.cancel waits on the
            // session's queue while that queue waits to resume the cancelled task), which hung a whole test run.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for pair in pairs {
                    group.addTask { (try? await h.refresh(pair.refreshToken).status) ?? -1 }
                }
                let deadline = ContinuousClock.now + .seconds(120)
                while await h.sandbox.requestsInFlight < 80, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                let held = await h.sandbox.requestsInFlight
                await h.sandbox.openGate()
                #expect(held == 80, "only \(held) of 80 requests reached the sandbox at once")
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.count == 80)
            #expect(statuses.allSatisfy { $0 == 200 })
            let counters = await h.sandbox.counters
            #expect(counters.peakConcurrentRequests == 80)
            #expect(counters.successfulRefreshes == 80)
        }
    }

    @Test func countersAreExactUnderConcurrency() async throws {
        try await withSandbox { h in
            let pair = try await h.sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            // Failures caught per task, never thrown out of the group (see the test above).
            let failed = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<100 {
                    group.addTask { (try? await h.refresh(pair.refreshToken)) == nil }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(failed == 0, "\(failed) of 100 requests failed")
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refreshToken) == 100)
            #expect(await h.sandbox.requests(to: "POST /v1/access_token") == 100)
        }
    }

    @Test func issuesFiveHundredPairsQuickly() async throws {
        let sandbox = ProviderSandbox(configuration: testConfiguration())
        var tokens = Set<String>()
        for _ in 0..<500 {
            let pair = try await sandbox.issueTokenPair(clientId: clientId, userId: "person-1")
            tokens.insert(pair.accessToken)
            tokens.insert(pair.refreshToken)
        }
        #expect(tokens.count == 1000)
        #expect(await sandbox.counters.tokenPairsIssued == 500)
    }
}
