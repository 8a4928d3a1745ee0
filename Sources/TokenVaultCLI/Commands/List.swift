import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension TokenVault {
    struct List: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every account and how long its tokens last (no passphrase needed).",
            aliases: ["status"])

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let all = try database.integrations()
            let integrations = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.name) })
            let providers = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.provider) })
            let accounts = try database.accountSummaries()
            let now = context.now()
            for a in accounts where ClockAhead.isAhead(updatedAt: a.updatedAt, now: now) {
                context.console.err(ClockAhead.warning(account: a.name, updatedAt: a.updatedAt, now: now,
                                                       then: "it shows as 'stale' and the next refresh-all or use refreshes it"))
            }
            if json {
                let objects: [[String: Any]] = accounts.map { a in
                    var o: [String: Any] = [
                        "account": a.name, "integration": integrations[a.integrationId] ?? "?",
                        "provider": providers[a.integrationId] ?? "?",
                        "state": DisplayState(a, now: now).rawValue,
                    ]
                    o["email"] = a.email
                    o["display_name"] = a.displayName
                    o["org_id"] = a.orgId
                    o["access_expires_at"] = a.accessExpiresAt.map(Format.timestamp)
                    o["refresh_expires_at"] = a.refreshExpiresAt.map(Format.timestamp)
                    o["access_expires_in_seconds"] = a.accessExpiresAt.map { Int($0.timeIntervalSince(now)) }
                    o["refresh_expires_in_seconds"] = a.refreshExpiresAt.map { Int($0.timeIntervalSince(now)) }
                    o["scopes"] = a.grantedScopes
                    return o
                }
                context.console.out(Format.json(objects) + "\n")
                return
            }
            if accounts.isEmpty {
                context.console.err("No accounts yet: 'tokenvault authorize NAME' or 'tokenvault import NAME --integration I' adds one.\n")
                return
            }
            var rows = [["ACCOUNT", "INTEGRATION", "PROVIDER", "IDENTITY", "ACCESS EXPIRES IN", "REFRESH EXPIRES IN", "STATE"]]
            for a in accounts {
                rows.append([
                    // Stored provider text (an older vault, or an edited file) is cleaned again where a person reads it.
                    a.name, integrations[a.integrationId] ?? "?", providers[a.integrationId] ?? "?", a.email.map { ProviderText.displayable($0, limit: 80) } ?? "-",
                    Format.remaining(a.accessExpiresAt, now: now), Format.remaining(a.refreshExpiresAt, now: now),
                    DisplayState(a, now: now).rawValue,
                ])
            }
            context.console.out(Table.render(rows))
        }
    }
}
