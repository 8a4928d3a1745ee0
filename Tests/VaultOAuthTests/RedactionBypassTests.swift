import Foundation
import Testing

@testable import VaultOAuth

/// `--verbose` redaction was once bypassed with JSON-escaped key names (`"access\u005ftoken"`): it redacts the
/// decoded JSON, not the raw text.
@Suite struct RedactionBypassTests {
    func assertClean(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.contains("SECRET"), "a secret survived in: \(text)", sourceLocation: sourceLocation)
    }

    static let escapedKeys = [
        #"access\u005ftoken"#, #"\u0061ccess_token"#, #"ACCESS_TOKEN"#, #"refresh\u005Ftoken"#, #"client\u005fsecret"#,
        #"\u0063\u006f\u0064\u0065"#, #"acc\u0065ss_tok\u0065n"#, #"access_\u0074oken"#, #"id_t\u006fken"#,
    ]

    @Test func escapedKeyNamesAreRedactedInWholeBodies() {
        for key in Self.escapedKeys {
            let body = #"{"\#(key)":"SECRET_VALUE","expires_in":3600,"token_type":"Bearer"}"#
            let shown = Redaction.body(Data(body.utf8), contentType: "application/json")
            assertClean(shown)
            #expect(shown.contains(Redaction.marker), "\(key): \(shown)")
            #expect(shown.contains(#""expires_in":3600"#), "\(shown)")
        }
        // `\/` is an escaped slash; a key spelled with it is still not a secret key, and its value stays.
        #expect(Redaction.json(#"{"a\/b":"visible"}"#) == #"{"a/b":"visible"}"#)
    }

    @Test func nestedObjectsListsAndNonStringValues() {
        let body = #"""
            {"data":[{"user":{"tokens":{"access\u005ftoken":"SECRET_1","refresh_token":["SECRET_2"]}}},
             {"Token":{"value":"SECRET_3"}},{"password":12345678}],"note":"access_token","n":[1,2.5,true,null]}
            """#
        let shown = Redaction.json(body)
        assertClean(shown)
        #expect(!shown.contains("12345678"))
        #expect(shown.contains(#""note":"access_token""#))
        #expect(shown.contains(#""n":[1,2.5,true,null]"#))
    }

    @Test func truncatedBodiesWithEscapedKeys() {
        let bodies = [
            #"{"access\u005ftoken":"SECRET_VALUE","expires_in":36"#,
            #"{"expires_in":3600,"\u0061ccess_token":"SECRET_VAL"#,
            #"{"x":{"refresh\u005ftoken":{"v":"SECRET_IN_OBJECT","w":"#,
            #"{"client\u005Fsecret" : [ "SECRET_IN_LIST" ,"#,
            #"{"a":"b\"","access\u005ftoken":"SECRET_AFTER_ESCAPED_QUOTE""#,
        ]
        for body in bodies {
            #expect(JSONValue.parse(Data(body.utf8)) == nil, "\(body) parses")
            let shown = Redaction.body(Data(body.utf8), contentType: "application/json")
            assertClean(shown)
            #expect(shown.contains(Redaction.marker), "\(shown)")
        }
    }

    @Test func formsAndQueriesCompareDecodedKeys() {
        let form =
            "grant_type=refresh_token&refresh%5Ftoken=SECRET_1&client%5fsecret=SECRET_2&CODE=SECRET_3&ACCESS%5FTOKEN=SECRET_4&%63ode=SECRET_5"
        let shown = Redaction.form(form)
        assertClean(shown)
        #expect(shown.hasPrefix("grant_type=refresh_token&"))
        let url = URL(string: "http://127.0.0.1:8080/cb?state=s&%63ode=SECRET_CODE&cod%65=SECRET_2")!
        assertClean(Redaction.url(url))
    }
}
