import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct ListIntegrations: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List registered integrations and their token endpoints (no passphrase needed).",
            discussion: "With --json, every endpoint of each. 'tokenvault integrations' is the same command.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            try Self.list(try openDatabase(context), json: json, context: context)
        }

        static func list(_ database: any VaultStorage, json: Bool, context: Context) throws {
            let integrations = try database.integrations()
            if json {
                let reports = try integrations.map {
                    IntegrationReport($0, accounts: try database.accountCount(integrationId: $0.id), withOptions: true)
                }
                context.console.out(Format.json(reports) + "\n")
                return
            }
            // The token endpoint rather than the API base: it is where the client secret and the tokens are sent.
            var rows = [
                ["NAME", "PROVIDER", "CLIENT ID", "REDIRECT URI", "SCOPES", "TOKEN ENDPOINT", "VARIABLE", "ACCOUNTS"]
            ]
            for i in integrations {
                rows.append([
                    i.name, i.provider, i.clientId, i.redirectURI, i.scopes.joined(separator: " "),
                    IntegrationEndpoints.of(i)?.token.absoluteString ?? "?", i.envVar,
                    String(try database.accountCount(integrationId: i.id)),
                ])
            }
            context.console.out(Table.render(rows))
            if !integrations.isEmpty {
                context.console.err("'tokenvault integration show NAME' shows every endpoint of an integration.\n")
            }
        }
    }

    /// `tokenvault integration show NAME`: one integration in full, every endpoint its requests go to.
    struct ShowIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one integration and the endpoints its requests go to (no passphrase needed).",
            discussion: """
                Where the browser is sent, where the client secret, the tokens, revocations and identity lookups go.
                Example:
                  tokenvault integration show work --json
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The integration's name.", completion: .integrationNames)
        var name: String

        @Flag(help: "Print JSON (as one element of 'integration list --json').")
        var json = false

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let i = try database.integration(named: name)
            if json {
                let report = IntegrationReport(
                    i, accounts: try database.accountCount(integrationId: i.id), withOptions: false)
                context.console.out(Format.json(report) + "\n")
                return
            }
            var lines: [(String, String)] = [
                ("name", i.name), ("provider", i.provider), ("client id", i.clientId), ("redirect uri", i.redirectURI),
                ("scopes", i.scopes.isEmpty ? "-" : i.scopes.joined(separator: " ")), ("api base", i.apiBase),
                ("variable", i.envVar), ("accounts", String(try database.accountCount(integrationId: i.id))),
            ]
            lines +=
                IntegrationEndpoints.of(i).map(IntegrationEndpoints.lines) ?? [
                    ("endpoints", "? (the integration's provider or API base cannot be read)")
                ]
            let width = lines.map(\.0.count).max() ?? 0
            for (label, value) in lines {
                context.console.out(label + ":" + String(repeating: " ", count: width - label.count + 1) + value + "\n")
            }
        }
    }
}
