import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension TokenVault {
    struct ListIntegrations: VaultCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List registered integrations (no passphrase needed).")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws { try Self.list(try openDatabase(context), json: json, context: context) }

        static func list(_ database: any VaultStorage, json: Bool, context: Context) throws {
            let integrations = try database.integrations()
            if json {
                let objects: [[String: Any]] = try integrations.map { i in
                    [
                        "name": i.name, "provider": i.provider, "client_id": i.clientId, "redirect_uri": i.redirectURI,
                        "scopes": i.scopes, "api_base": i.apiBase, "env_var": i.envVar,
                        "accounts": try database.accountCount(integrationId: i.id),
                        "provider_options": (try? ProviderOptions.decode(i.providerOptions)).flatMap { $0 }.map { o -> [String: Any] in
                            var d: [String: Any] = [:]
                            d["tenant"] = o.tenant; d["issuer"] = o.issuer; d["authorize_url"] = o.authorizeURL
                            d["token_url"] = o.tokenURL; d["device_url"] = o.deviceURL; d["revoke_url"] = o.revokeURL
                            d["userinfo_url"] = o.userinfoURL; d["client_auth"] = o.clientAuth?.rawValue
                            return d
                        } ?? NSNull(),
                    ]
                }
                context.console.out(Format.json(objects) + "\n")
                return
            }
            var rows = [["NAME", "PROVIDER", "CLIENT ID", "REDIRECT URI", "SCOPES", "API BASE", "VARIABLE", "ACCOUNTS"]]
            for i in integrations {
                rows.append([i.name, i.provider, i.clientId, i.redirectURI, i.scopes.joined(separator: " "), i.apiBase, i.envVar,
                             String(try database.accountCount(integrationId: i.id))])
            }
            context.console.out(Table.render(rows))
        }
    }
}
