import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func knownAnswers(input: String, expected: String) {
        #expect(hex(sha256(Array(input.utf8))) == expected)
    }

    @Test func millionAs() {
        let digest = sha256([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
        #expect(hex(digest) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func pkceS256MatchesRFC7636AppendixB() {
        #expect(pkceChallenge(forVerifier: rfc7636Verifier) == rfc7636Challenge)
    }
}

@Suite struct EncodingTests {
    @Test func formParsingDecodesPlusAndPercent() {
        let fields = parseForm("scope=spark%3Aall+spark:kms&state=a%26b&empty=&flag")
        #expect(fields["scope"] == "spark:all spark:kms")
        #expect(fields["state"] == "a&b")
        #expect(fields["empty"] == "")
        #expect(fields["flag"] == "")
    }

    @Test func appendQueryKeepsExistingQueryAndFragment() {
        #expect(appendQuery([("code", "a b")], to: "http://x/cb") == "http://x/cb?code=a%20b")
        #expect(appendQuery([("code", "c")], to: "http://x/cb?x=1#frag") == "http://x/cb?x=1&code=c#frag")
    }

    @Test func basicAuthorizationParses() {
        let header = "Basic " + Data("id:sec:ret".utf8).base64EncodedString()
        let parsed = parseBasicAuthorization(header)
        #expect(parsed?.id == "id")
        #expect(parsed?.secret == "sec:ret")
        #expect(parseBasicAuthorization("Bearer x") == nil)
    }
}

@Suite struct ConfigurationTests {
    @Test func jsonWithOnlyClientsTakesWebexDefaults() throws {
        let json =
            #"{"clients":[{"clientId":"c","clientSecret":"s","redirectURIs":["http://127.0.0.1:1/cb"],"scopes":["spark:all"]}]}"#
        let configuration = try JSONDecoder().decode(SandboxConfiguration.self, from: Data(json.utf8))
        #expect(configuration.clients.count == 1)
        #expect(configuration.accessTokenLifetime == 1_209_599)
        #expect(configuration.refreshTokenLifetime == 7_776_000)
        #expect(configuration.rotation == .off)
        #expect(configuration.reportScopes == false)
        #expect(configuration.users == [.sample])
    }

    @Test func roundTripsThroughJSON() throws {
        var configuration = testConfiguration()
        configuration.rotation = .grace(seconds: 30)
        configuration.faults = .init(tooManyRequestsEvery: 3, retryAfterSeconds: 7, serviceUnavailableEvery: 5)
        let data = try JSONEncoder().encode(configuration)
        #expect(String(decoding: data, as: UTF8.self).contains(#""rotation":"grace:30""#))
        #expect(try JSONDecoder().decode(SandboxConfiguration.self, from: data) == configuration)
    }

    @Test func badRotationIsRefused() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(SandboxConfiguration.self, from: Data(#"{"rotation":"sometimes"}"#.utf8))
        }
    }

    @Test func commandLineFlagsOverrideTheFile() throws {
        let file = #"{"accessTokenLifetime": 60, "rotation": "on"}"#
        let parsed = try SandboxCommandLine.parse(
            [
                "--config", "cfg.json", "--port", "8099", "--latency-ms", "250", "--rotation", "grace:30",
                "--client-id", "c1", "--client-secret", "s1", "--redirect-uri", "http://127.0.0.1:1/a",
                "--redirect-uri=http://127.0.0.1:2/b", "--scopes", "spark:all,spark:kms", "--429-every", "4",
                "--retry-after", "2", "--503-every", "6", "--deny-consent",
            ],
            readFile: { path in
                #expect(path == "cfg.json")
                return Data(file.utf8)
            })
        let c = parsed.configuration
        #expect(parsed.port == 8099)
        #expect(c.accessTokenLifetime == 60)
        #expect(c.latency == 0.25)
        #expect(c.rotation == .grace(seconds: 30))
        #expect(
            c.clients == [
                .init(
                    clientId: "c1", clientSecret: "s1",
                    redirectURIs: ["http://127.0.0.1:1/a", "http://127.0.0.1:2/b"],
                    scopes: ["spark:all", "spark:kms"])
            ])
        #expect(
            c.faults
                == .init(
                    tooManyRequestsEvery: 4, retryAfterSeconds: 2, serviceUnavailableEvery: 6,
                    denyConsent: true))
    }

    @Test(arguments: [["--rotation", "maybe"], ["--port", "70000"], ["--bogus"], ["--client-id", "x"], ["--port"]])
    func badCommandLinesAreRefused(arguments: [String]) {
        #expect(throws: SandboxError.self) { try SandboxCommandLine.parse(arguments) }
    }
}
