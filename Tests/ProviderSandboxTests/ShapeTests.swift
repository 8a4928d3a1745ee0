import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What holds for every non-Webex shape: the base URL, the shared counters, faults, the clock and rotation
/// bookkeeping. Each shape's own answers are tested in its own file (GoogleShapeTests.swift, …).
@Suite struct ShapeTests {
    @Test(arguments: ShapeDriver.all)
    func baseURLIsTheBareOrigin(driver: ShapeDriver) async throws {
        try await driver.run { h in
            let port = try #require(h.base.port)
            #expect(h.base.absoluteString == "http://127.0.0.1:\(port)")
            // Webex's paths are not served by another shape.
            let webex = try await h.call("POST", "/v1/access_token", form: ["grant_type": "refresh_token"])
            #expect(webex.status == 404)
            #expect(await h.sandbox.requests(to: "other") == 1)
        }
    }

    @Test func webexStillAnswersUnderV1() async throws {
        let sandbox = ProviderSandbox(configuration: testConfiguration())
        let url = try await sandbox.start()
        #expect(url.path == "/v1")
        await sandbox.stop()
    }

    @Test(arguments: ShapeDriver.all)
    func fullPairThenIdentityThenExpiryByTheSteppedClock(driver: ShapeDriver) async throws {
        try await driver.run { h in
            let pair = try await driver.pair(h)
            #expect(driver.accepted(try await driver.identity(h, pair.access)))
            let lifetime =
                await h.sandbox.configuration.accessTokenLifetime
                + (await h.sandbox.configuration.accessTokenLifetimeJitter)
            await h.sandbox.advanceClock(by: TimeInterval(lifetime))
            #expect(!driver.accepted(try await driver.identity(h, pair.access)))
            #expect(await h.sandbox.counters.codesRedeemed == 1)
            #expect(await h.sandbox.requests(to: driver.tokenRoute) == 1)
        }
    }

    /// Ten refreshes with one refresh token at once: each presentation is counted exactly once, and strict rotation
    /// lets exactly one through.
    @Test(arguments: ShapeDriver.all)
    func concurrentRefreshesAreCountedExactly(driver: ShapeDriver) async throws {
        try await driver.run { h in
            let pair = try await driver.pair(h)
            // A failed request counts as no success, caught in its own task: a group cancelling URLSession tasks
            // can deadlock in FoundationNetworking on Linux (see LoadTests).
            let successes = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<10 {
                    group.addTask { (try? await driver.refresh(h, pair.refresh)).map { driver.succeeded($0) } ?? false }
                }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            let rotation = await h.sandbox.configuration.rotation
            let expected = rotation == .on ? 1 : 10
            #expect(successes == expected)
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refresh) == 10)
            #expect(await h.sandbox.counters.refreshGrants == 10)
            #expect(await h.sandbox.requests(to: driver.tokenRoute) == 11)
        }
    }

    @Test(arguments: ShapeDriver.all)
    func tooManyRequestsHitTheShapesTokenEndpointWithoutReachingTheGrant(driver: ShapeDriver) async throws {
        try await driver.run({
            $0.faults.tooManyRequestsEvery = 2
            $0.faults.retryAfterSeconds = 7
        }) { h in
            let pair = try await driver.pair(h)
            let limited = try await driver.refresh(h, pair.refresh)
            #expect(limited.status == 429)
            #expect(limited.header("Retry-After") == "7")
            #expect(driver.succeeded(try await driver.refresh(h, pair.refresh)))
            #expect(await h.sandbox.counters.tooManyRequestsAnswered == 1)
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refresh) == 1)
        }
    }

    @Test(arguments: ShapeDriver.all)
    func serviceUnavailableAndHTMLGarbage(driver: ShapeDriver) async throws {
        try await driver.run({ $0.faults.serviceUnavailableEvery = 2 }) { h in
            let pair = try await driver.pair(h)
            #expect(try await driver.refresh(h, pair.refresh).status == 503)
            await h.sandbox.updateConfiguration { $0.faults = .init(htmlGarbage: true) }
            let page = try await driver.refresh(h, pair.refresh)
            #expect(page.status == 200)
            #expect(page.header("Content-Type")?.hasPrefix("text/html") == true)
            #expect(await h.sandbox.counters.htmlGarbageAnswered == 1)
            #expect(await h.sandbox.uses(ofRefreshToken: pair.refresh) == 0)
        }
    }

    @Test(arguments: [ShapeDriver.google, .github, .slack, .oidc])
    func withheldScopesAreLeftOutOfTheGrant(driver: ShapeDriver) async throws {
        let shown = ShapeDriver(
            shape: driver.shape, scopes: driver.shape == .github ? ["repo", "gist"] : driver.scopes,
            authorizePath: driver.authorizePath, tokenPath: driver.tokenPath, tokenRoute: driver.tokenRoute,
            identityMethod: driver.identityMethod, identityPath: driver.identityPath)
        try await shown.run({
            $0.withheldScopes = [shown.scopes[1]]
            $0.githubOAuthApp = true
        }) { h in
            var query = shown.authorizeQuery()
            if shown.shape == .github { query["scope"] = "repo gist" }
            let code = try #require(try await h.authorizeAt(shown.authorizePath, query)["code"])
            var form = ["code": code, "redirect_uri": redirectURI]
            if shown.shape != .github && shown.shape != .slack { form["grant_type"] = "authorization_code" }
            let reply = try await shown.token(h, form)
            let fields = shown.shape == .slack ? reply.json["authed_user"] as? [String: Any] ?? [:] : reply.json
            let separator = shown.shape == .github || shown.shape == .slack ? "," : " "
            var expected = shown.scopes
            expected.remove(at: 1)
            #expect(fields["scope"] as? String == expected.joined(separator: separator))
        }
    }

    @Test func eachShapeNamesItsTokenEndpointForLatency() async {
        let cases: [(ProviderShape, String, String)] = [
            (.webex, "POST", "/v1/access_token"), (.webex, "POST", "/v1/device/token"), (.google, "POST", "/token"),
            (.microsoft, "POST", "/contoso.com/oauth2/v2.0/token"), (.github, "POST", "/login/oauth/access_token"),
            (.slack, "POST", "/api/oauth.v2.access"), (.oidc, "POST", "/token"),
        ]
        for (shape, method, path) in cases {
            let sandbox = ProviderSandbox(configuration: SandboxConfiguration(shape: shape))
            #expect(await sandbox.rules.isTokenEndpoint(method, path), "\(shape) \(path)")
            #expect(!(await sandbox.rules.isTokenEndpoint("GET", path)), "\(shape) GET \(path)")
            #expect(!(await sandbox.rules.isTokenEndpoint("POST", "/authorize")), "\(shape)")
        }
    }
}

@Suite struct ShapeConfigurationTests {
    @Test func shapeIsAStringAndUnsetFieldsTakeItsDefaults() throws {
        let github = try JSONDecoder().decode(SandboxConfiguration.self, from: Data(#"{"shape":"github"}"#.utf8))
        #expect(github.shape == .github)
        #expect(github.rotation == .on)
        #expect(github.accessTokenLifetime == 28_800)
        #expect(github.refreshTokenLifetime == 15_811_200)
        #expect(github.githubOAuthApp == false)

        let microsoft = try JSONDecoder().decode(
            SandboxConfiguration.self, from: Data(#"{"shape":"microsoft","accessTokenLifetime":60}"#.utf8))
        #expect(microsoft.rotation == .lenient)
        #expect(microsoft.accessTokenLifetime == 60)
        #expect(microsoft.accessTokenLifetimeJitter == 1800)

        let oidc = try JSONDecoder().decode(
            SandboxConfiguration.self, from: Data(#"{"shape":"oidc","rotation":"on"}"#.utf8))
        #expect(oidc.rotation == .on)
        #expect(oidc.accessTokenLifetime == 3600)

        let webex = try JSONDecoder().decode(SandboxConfiguration.self, from: Data("{}".utf8))
        #expect(webex.shape == .webex)
        #expect(webex.accessTokenLifetimeJitter == 0)
    }

    @Test func unknownShapeIsRefused() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(SandboxConfiguration.self, from: Data(#"{"shape":"okta"}"#.utf8))
        }
    }

    @Test func lenientRotationAndPublicClientsDecodeAndRoundTrip() throws {
        let json =
            #"{"shape":"microsoft","rotation":"lenient","clients":[{"clientId":"c","clientSecret":"","redirectURIs":[],"scopes":[],"isPublic":true},{"clientId":"d","clientSecret":"s","redirectURIs":[],"scopes":[]}]}"#
        let configuration = try JSONDecoder().decode(SandboxConfiguration.self, from: Data(json.utf8))
        #expect(configuration.rotation == .lenient)
        #expect(configuration.clients.map(\.isPublic) == [true, false])
        let data = try JSONEncoder().encode(configuration)
        #expect(String(decoding: data, as: UTF8.self).contains(#""shape":"microsoft""#))
        #expect(try JSONDecoder().decode(SandboxConfiguration.self, from: data) == configuration)
        #expect(SandboxConfiguration.Rotation(argument: "lenient")?.description == "lenient")
    }

    @Test func shapeFlagSetsTheShapeAndItsDefaults() throws {
        let slack = try SandboxCommandLine.parse(["--shape", "slack"]).configuration
        #expect(slack.shape == .slack)
        #expect(slack.rotation == .on)
        #expect(slack.accessTokenLifetime == 43_200)

        // The flag wins over the file's shape; what the file leaves out takes the flag's shape's defaults.
        let parsed = try SandboxCommandLine.parse(
            ["--config", "cfg.json", "--shape=google", "--rotation", "lenient"],
            readFile: { _ in Data(#"{"shape":"github","refreshTokenLifetime":99}"#.utf8) })
        #expect(parsed.configuration.shape == .google)
        #expect(parsed.configuration.accessTokenLifetime == 3599)
        #expect(parsed.configuration.refreshTokenLifetime == 99)
        #expect(parsed.configuration.rotation == .lenient)

        #expect(try SandboxCommandLine.parse([]).configuration.shape == .webex)
        #expect(SandboxCommandLine.usage.contains("--shape NAME"))
        #expect(SandboxCommandLine.usage.contains("lenient"))
    }

    @Test(arguments: [["--shape", "okta"], ["--shape"], ["--rotation", "loose"]])
    func badShapeArgumentsAreRefused(arguments: [String]) {
        #expect(throws: SandboxError.self) { try SandboxCommandLine.parse(arguments) }
    }
}
