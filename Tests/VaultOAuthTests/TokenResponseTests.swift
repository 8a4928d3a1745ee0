import Foundation
import Testing

@testable import VaultOAuth

func parse(_ json: String) throws -> TokenResponse { try TokenResponse.parse(Data(json.utf8)) }

/// The reason inside an invalidTokenResponse error, or nil for any other outcome.
func rejection(_ json: String) -> String? {
    do {
        _ = try parse(json)
        return nil
    } catch let OAuthError.invalidTokenResponse(reason) {
        return reason
    } catch {
        return nil
    }
}

@Suite struct TokenResponseTests {
    @Test func webexCapturedResponse() throws {
        let t = try parse(
            #"{"access_token":"ZDI3_PF84_abc","expires_in":1209599,"refresh_token":"MDEy_PF84_abc","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#
        )
        #expect(
            t
                == TokenResponse(
                    accessToken: "ZDI3_PF84_abc", expiresIn: 1_209_599, refreshToken: "MDEy_PF84_abc",
                    refreshTokenExpiresIn: 7_776_000, tokenType: "Bearer", scope: nil))
    }

    @Test func missingRefreshTokenIsNilNotAnError() throws {
        let t = try parse(#"{"access_token":"a","expires_in":43199,"token_type":"Bearer"}"#)
        #expect(t.refreshToken == nil)
        #expect(t.refreshTokenExpiresIn == nil)
        #expect(try parse(#"{"access_token":"a","expires_in":60,"refresh_token":""}"#).refreshToken == nil)
    }

    @Test func scopeStringAndUnknownFields() throws {
        let t = try parse(
            #"{"access_token":"a","expires_in":60,"scope":"spark:all spark:people_read","id_token":"x","extra":{"n":1}}"#
        )
        #expect(t.scope == ["spark:all", "spark:people_read"])
        #expect(t.tokenType == "Bearer")
    }

    @Test func numericStringsAndIntegralNumbersAccepted() throws {
        #expect(try parse(#"{"access_token":"a","expires_in":"3600"}"#).expiresIn == 3600)
        #expect(try parse(#"{"access_token":"a","expires_in":3600.0}"#).expiresIn == 3600)
    }

    @Test func malformedJSON() {
        #expect(rejection(#"{"access_token":"a","expires_in":36"#) == "it is not valid JSON")
        #expect(rejection("<html>nope</html>") == "it is not valid JSON")
        #expect(rejection("") == "it is not valid JSON")
        #expect(rejection(#"["access_token"]"#)?.contains("must be a JSON object") == true)
    }

    @Test func missingOrEmptyAccessToken() {
        #expect(rejection(#"{"expires_in":60}"#) == "access_token is missing")
        #expect(rejection(#"{"access_token":null,"expires_in":60}"#) == "access_token is missing")
        #expect(rejection(#"{"access_token":"","expires_in":60}"#) == "access_token is empty")
        #expect(rejection(#"{"access_token":42,"expires_in":60}"#) == "access_token must be a string, got a number")
        #expect(
            rejection(#"{"access_token":"a\nb","expires_in":60}"#)?.contains("characters a bearer token cannot have")
                == true)
    }

    @Test func expiresInRules() {
        #expect(
            rejection(#"{"access_token":"a","expires_in":-5}"#)
                == "expires_in must be a positive number of seconds, got -5")
        #expect(
            rejection(#"{"access_token":"a","expires_in":0}"#)
                == "expires_in must be a positive number of seconds, got 0")
        #expect(
            rejection(#"{"access_token":"a","expires_in":"soon"}"#)
                == #"expires_in must be a positive number of seconds, got "soon""#)
        #expect(
            rejection(#"{"access_token":"a","expires_in":true}"#)
                == "expires_in must be a positive number of seconds, got true")
        #expect(
            rejection(#"{"access_token":"a","expires_in":1.5}"#)
                == "expires_in must be a whole number of seconds, got 1.5")
        #expect(rejection(#"{"access_token":"a"}"#)?.hasPrefix("expires_in is missing") == true)
        // Milliseconds since the epoch, a classic mix-up.
        #expect(
            rejection(#"{"access_token":"a","expires_in":1735689600000}"#)?.hasPrefix(
                "expires_in must be at most 10 years") == true)
        #expect(rejection(#"{"access_token":"a","expires_in":315360000}"#) == nil)
        #expect(rejection(#"{"access_token":"a","expires_in":315360001}"#) != nil)
    }

    @Test func refreshTokenExpiresInRules() {
        #expect(
            rejection(#"{"access_token":"a","expires_in":60,"refresh_token":"r","refresh_token_expires_in":-1}"#)
                == "refresh_token_expires_in must be a positive number of seconds, got -1")
        #expect(
            rejection(#"{"access_token":"a","expires_in":60,"refresh_token":"r","refresh_token_expires_in":"x"}"#)
                != nil)
        #expect(
            rejection(#"{"access_token":"a","expires_in":60,"refresh_token":7}"#)
                == "refresh_token must be a string, got a number")
    }

    /// libcurl missing (a Recommends of the package, so it may be): said as what it is, with the package to
    /// install, and not retried, where it used to be "network error ...; try again later" eight times over.
    @Test func aMissingLibcurlIsNamedAndNotRetried() {
        let url = URL(string: "https://webexapis.com/v1/access_token")!
        let e = CurlTransport.map(
            CurlLibrary.LoadError(
                description:
                    "libcurl is not installed (libcurl.so.4 could not be loaded; on Debian: apt-get install libcurl4)"),
            url: url)
        guard case .transport(.missingLibrary, let host) = e else {
            Issue.record("\(e)")
            return
        }
        #expect(host == "webexapis.com")
        #expect(!e.retryable)
        #expect(
            e.errorDescription
                == "cannot talk to webexapis.com: libcurl is not installed (libcurl.so.4 could not be loaded; on Debian: apt-get install libcurl4)"
        )
    }

    @Test func errorTextReadsWellAndHidesTheToken() throws {
        let error = try #require(throws: OAuthError.self) {
            try parse(#"{"access_token":"SECRET-TOKEN-VALUE","expires_in":-5}"#)
        }
        let text = try #require(error.errorDescription)
        #expect(text == "the token response is not usable: expires_in must be a positive number of seconds, got -5")
        #expect(!text.contains("SECRET"))
    }
}
