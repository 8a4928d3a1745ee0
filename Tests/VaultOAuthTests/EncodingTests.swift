import Foundation
import Testing
import TokenVaultTestSupport

@testable import VaultOAuth

let testBase = URL(string: "http://127.0.0.1:9/v1")!

func credentials(redirect: String = "http://localhost:8080/callback") -> ClientCredentials {
    ClientCredentials(
        clientId: "C1d&=+", clientSecret: "s3cr+t/&=%", redirectURI: redirect,
        scopes: ["spark:people_read", "spark:kms"], apiBase: testBase)
}

@Suite struct EncodingTests {
    @Test func formEncodingOfTrickyValues() {
        let encoded = FormEncoding.encode([("a b", "x+y&z=w%/?#é~-._"), ("empty", "")])
        #expect(encoded == "a%20b=x%2By%26z%3Dw%25%2F%3F%23%C3%A9~-._&empty=")
        let decoded = FormEncoding.decode(encoded)
        #expect(decoded.map(\.0) == ["a b", "empty"])
        #expect(decoded.map(\.1) == ["x+y&z=w%/?#é~-._", ""])
        // A literal + in a received form is a space.
        #expect(FormEncoding.decode("q=a+b")[0].1 == "a b")
    }

    @Test func authorizationURL() throws {
        let client = OAuthClient(provider: .webex, credentials: credentials(), transport: FakeTransport())
        let pkce = PKCE(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        let url = client.authorizationURL(state: "st/ate+1", pkce: pkce)
        let s = url.absoluteString
        #expect(s.hasPrefix("http://127.0.0.1:9/v1/authorize?"))
        #expect(s.contains("scope=spark%3Apeople_read%20spark%3Akms"))
        #expect(!s.contains("+"))
        #expect(s.contains("response_type=code"))
        #expect(s.contains("code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        #expect(s.contains("code_challenge_method=S256"))
        #expect(s.contains("redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback"))
        #expect(s.contains("state=st%2Fate%2B1"))
        #expect(s.contains("client_id=C1d%26%3D%2B"))
        // Foundation reads it back to the same values.
        let items = try #require(URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems)
        let q = Dictionary(uniqueKeysWithValues: items.map { ($0.name, $0.value ?? "") })
        #expect(q["scope"] == "spark:people_read spark:kms")
        #expect(q["state"] == "st/ate+1")
        #expect(q["client_id"] == "C1d&=+")
        // Explicit scopes replace the integration's.
        #expect(
            client.authorizationURL(state: "s", pkce: pkce, scopes: ["spark:all"]).absoluteString.contains(
                "scope=spark%3Aall&"))
    }

    @Test func endpointJoinKeepsBasePath() {
        #expect(
            Provider.webex.url(.relative("people/me"), base: URL(string: "https://webexapis.com/v1/")!).absoluteString
                == "https://webexapis.com/v1/people/me")
        #expect(
            Provider.webex.url(.relative("/access_token"), base: URL(string: "https://webexapis.com/v1")!)
                .absoluteString
                == "https://webexapis.com/v1/access_token")
    }

    @Test func absoluteEndpointsFollowAChangedBaseKeepingTheirPaths() {
        let g = Provider.google
        #expect(
            g.url(g.endpoints.token, base: g.defaultAPIBase).absoluteString == "https://oauth2.googleapis.com/token")
        let sandbox = URL(string: "http://127.0.0.1:9")!
        #expect(g.url(g.endpoints.token, base: sandbox).absoluteString == "http://127.0.0.1:9/token")
        #expect(g.url(g.endpoints.identity!, base: sandbox).absoluteString == "http://127.0.0.1:9/v1/userinfo")
        #expect(
            g.url(g.endpoints.authorize, base: URL(string: "https://proxy.example/google/")!).absoluteString
                == "https://proxy.example/google/o/oauth2/v2/auth")
        let m = Provider.microsoft
        #expect(
            m.url(m.endpoints.token, base: m.defaultAPIBase, values: ["tenant": "contoso.example"]).absoluteString
                == "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token")
        // A value cannot add path segments or a query.
        #expect(
            m.url(m.endpoints.token, base: m.defaultAPIBase, values: ["tenant": "a/b?c"]).absoluteString
                == "https://login.microsoftonline.com/a%2Fb%3Fc/oauth2/v2.0/token")
        let gh = Provider.github
        #expect(
            gh.url(gh.endpoints.revoke!, base: sandbox, values: ["client_id": "Iv1.abc"]).absoluteString
                == "http://127.0.0.1:9/applications/Iv1.abc/token")
    }

    @Test func providerIsAValue() throws {
        let p = Provider.webex
        #expect(p.supportsIdentity && p.supportsRevoke && p.supportsDeviceGrant)
        #expect(p.defaultEnvironmentVariable == "WEBEX_ACCESS_TOKEN")
        #expect(p.canRevoke(grantedScopes: ["spark:all"]) == false)
        #expect(p.canRevoke(grantedScopes: ["identity:tokens_write"]))
        #expect(p.canRevoke(grantedScopes: nil))
        var generic = p
        generic.revocation = .rfc7009
        #expect(generic.canRevoke(grantedScopes: ["spark:all"]))
        generic.revocation = .none(hint: "no")
        #expect(!generic.canRevoke(grantedScopes: nil))
    }

    @Test func theRegistryHasEveryPresetUnderItsOwnName() throws {
        for id in Provider.ID.allCases {
            #expect(Provider.preset(id).id == id)
        }
        #expect(
            !Provider.microsoft.supportsRevoke && Provider.slack.supportsRevoke && !Provider.slack.supportsDeviceGrant)
        #expect(throws: OAuthError.self) { try Provider.configured(name: "myspace", options: nil) }
        // A generic provider is nothing without its endpoints; a preset takes none.
        #expect(throws: OAuthError.self) { try Provider.configured(name: "generic", options: nil) }
        #expect(throws: OAuthError.self) {
            try Provider.configured(name: "google", options: ProviderOptions(tokenURL: "https://evil.example/token"))
        }
        let g = try Provider.configured(
            name: "generic",
            options: ProviderOptions(
                authorizeURL: "https://idp.example/a", tokenURL: "https://idp.example/t",
                revokeURL: "https://idp.example/r",
                clientAuth: .body))
        #expect(g.tokenClientAuth == .body && g.supportsRevoke && !g.supportsDeviceGrant && !g.supportsIdentity)
        #expect(
            g.url(g.endpoints.token, base: URL(string: "http://127.0.0.1:9")!).absoluteString == "https://idp.example/t"
        )
    }

    @Test func providerOptionsEncodeStably() throws {
        let o = ProviderOptions(tenant: "common", tokenURL: "https://x.example/t?a=1", clientAuth: .basic)
        #expect(o.encoded() == #"{"client_auth":"basic","tenant":"common","token_url":"https://x.example/t?a=1"}"#)
        #expect(try ProviderOptions.decode(o.encoded()) == o)
        #expect(throws: OAuthError.self) { try ProviderOptions.decode("{not json") }
    }

    @Test(arguments: [
        ("http://localhost:8080/callback", RedirectMode.loopback(host: "localhost", port: 8080, path: "/callback")),
        ("http://127.0.0.1/cb", .loopback(host: "127.0.0.1", port: 80, path: "/cb")),
        ("http://[::1]:9000/oauth/cb", .loopback(host: "::1", port: 9000, path: "/oauth/cb")),
        ("HTTP://LocalHost:8080", .loopback(host: "localhost", port: 8080, path: "/")),
        ("https://localhost:8080/callback", .paste),
        ("https://example.com/oauth", .paste),
        ("http://example.com/oauth", .paste),
        ("http://localhost.example.com/cb", .paste),
    ])
    func redirectMode(uri: String, expected: RedirectMode) throws {
        #expect(try RedirectMode(redirectURI: uri) == expected)
    }

    @Test func redirectModeRejectsGarbage() {
        #expect(throws: OAuthError.self) { try RedirectMode(redirectURI: "not a url") }
        #expect(throws: OAuthError.self) { try RedirectMode(redirectURI: "/callback") }
    }

    @Test func pastedCallback() throws {
        #expect(
            try parsePastedCallback("http://localhost:8080/callback?code=AbC%2B1&state=S1", expectedState: "S1")
                == "AbC+1")
        #expect(try parsePastedCallback("  'https://localhost/cb?state=S1&code=X#frag'\n", expectedState: "S1") == "X")
        #expect(try parsePastedCallback("code=X&state=S1", expectedState: "S1") == "X")
        #expect(try parsePastedCallback("  YjM0ZmE1_PF84_1eb65fdf  ", expectedState: "S1") == "YjM0ZmE1_PF84_1eb65fdf")
        // Each problem named exactly, so the user can fix the paste: a URL without code or state is not
        // "the wrong state".
        func problem(_ text: String) -> String? {
            do {
                _ = try parsePastedCallback(text, expectedState: "S1")
                return nil
            } catch OAuthError.invalidPaste(let detail) {
                return detail
            } catch { return "\(error)" }
        }
        #expect(
            problem("http://x/cb?code=X&state=OTHER")?.hasPrefix(
                "that URL carries another state than this authorization") == true)
        #expect(problem("http://x/cb?code=X")?.hasPrefix("that URL has no state= in it") == true)
        #expect(problem("http://x/cb?foo=bar")?.hasPrefix("that URL has no code= in it") == true)
        #expect(problem("http://x/cb")?.hasPrefix("that URL has no code= in it") == true)
        #expect(problem("two words") == "that is neither a URL nor an authorization code")
        #expect(problem("   ") == "nothing was pasted")
        #expect(throws: OAuthError.callbackError(code: "access_denied", description: "The user denied")) {
            try parsePastedCallback(
                "http://x/cb?error=access_denied&error_description=The+user+denied&state=S1", expectedState: "S1")
        }
        #expect(problem("http://x/cb?state=S1") == "that URL has no code= in it")
        #expect(throws: OAuthError.self) { try parsePastedCallback("", expectedState: "S1") }
        #expect(throws: OAuthError.self) {
            try parsePastedCallback("http://localhost:8080/callback", expectedState: "S1")
        }
        #expect(throws: OAuthError.self) { try parsePastedCallback("two words", expectedState: "S1") }
    }
}
