import Foundation
import Testing

@testable import TokenVaultCLI
@testable import TokenVaultCore

// Dotenv output that every dotenv reader reads back byte for byte, or a refusal.

@Suite struct DotenvRenderTests {
    @Test func dotenvIsUnquotedAndRefusesAnythingButTokenCharacters() throws {
        let token = "AZaz09-._~+/xyz=="
        #expect(
            try EnvExport.render([("WEBEX_ACCESS_TOKEN", token)], format: .dotenv) == "WEBEX_ACCESS_TOKEN=\(token)\n")
        for value in ["a${HOME}b", "a'b", "a b", "a\"b", "a=b", "=", "", "a#b", "a\\b", "a`id`", "é"] {
            do {
                let rendered = try EnvExport.render([("T", value)], format: .dotenv)
                Issue.record("\(value.debugDescription) was written as \(rendered.debugDescription)")
            } catch let error as CLIError {
                let report = ErrorReport.describe(error)
                #expect(report.code == .integrity)
                if value.count > 1 {
                    #expect(!report.message.contains(value), "the value was echoed: \(report.message)")
                }
            }
        }
        // The quoting formats still take any value.
        #expect(try EnvExport.render([("T", "a${HOME}b")], format: .sh) == "export T='a${HOME}b'\n")
    }
}
