import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct List: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Show every account and how long its tokens last (no passphrase needed).",
            discussion: """
                Per account: integration, identity, time left on the access and refresh tokens, and a state:
                  ok            nothing to do
                  expiring      the access token lapses within a day, or the refresh token within 14 days
                                (normal between refreshes for providers whose access tokens live hours)
                  expired       the access token has lapsed, the refresh token has not
                  needs-reauth  the provider refused the refresh token, or no usable token is left:
                                run 'tokenvault authorize'
                  no-refresh    a valid access token without a refresh token; refresh-all skips it
                  stale         stored more than 5 minutes in the future: refreshed at the next use
                  pending       a new pair waits in the local journal (the vault's store failed)
                  interrupted   a refresh was cut off after its refresh token was sent

                What needs a person is what 'tokenvault check' reports. 'status' is the same command.

                Examples:
                  tokenvault list
                  tokenvault list alice bob --json
                  tokenvault list --integration work
                  tokenvault list --format prometheus > /var/lib/node_exporter/textfile/tokenvault.prom
                """,
            aliases: ["status"])

        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: AccountSelection

        @Flag(help: "Print JSON.")
        var json = false

        enum Style: String, ExpressibleByArgument { case table, json, prometheus }

        @Option(help: "table, json, or prometheus (gauges for the node exporter's textfile collector).")
        var format: Style = .table

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let all = try database.integrations()
            let integrations = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.name) })
            let providers = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.provider) })
            let matches = try selection.matcher(database)
            let accounts = try database.accountSummaries().filter { matches($0.name, $0.integrationId) }
            let now = context.now()
            // An account whose newest pair waits in the local journal (the store failed) is `pending`, never `ok`:
            // the row holds the pair before it, whose refresh token the provider may have retired.
            // One whose refresh was cut off after sending, with no answer kept, is `interrupted` until refreshed.
            let journal = RefreshJournal.of(database, services: context.services)
            let waiting = Set((journal?.waitingPairs().values).map { $0.map(\.account) } ?? [])
            let interrupted = Set(await journal?.interruptedRefreshes(in: database).map(\.account) ?? [])
            func state(_ a: AccountSummary) -> String {
                if waiting.contains(a.name) { return "pending" }
                if interrupted.contains(a.name), a.state == .ok { return "interrupted" }
                return DisplayState(a, now: now).rawValue
            }
            for a in accounts where ClockAhead.isAhead(updatedAt: a.updatedAt, now: now) {
                context.console.warn(
                    ClockAhead.warning(
                        account: a.name, updatedAt: a.updatedAt, now: now,
                        then: "it shows as 'stale' and the next refresh-all or use refreshes it"))
            }
            if format == .prometheus {
                context.console.out(
                    Prometheus.render(
                        accounts, integrations: integrations, providers: providers,
                        pairStoredAt: try database.pairStoredTimes(), now: now))
                return
            }
            if json || format == .json {
                let reports = accounts.map {
                    AccountReport($0, integrations: integrations, providers: providers, state: state($0), now: now)
                }
                context.console.out(Format.json(reports) + "\n")
                return
            }
            if accounts.isEmpty {
                context.console.err(
                    "No accounts yet: 'tokenvault authorize NAME' or 'tokenvault import NAME --integration I' adds one.\n"
                )
                return
            }
            var rows = [
                ["ACCOUNT", "INTEGRATION", "PROVIDER", "IDENTITY", "ACCESS EXPIRES IN", "REFRESH EXPIRES IN", "STATE"]
            ]
            for a in accounts {
                rows.append([
                    // Stored provider text (an older vault, or an edited file) is cleaned again where a person reads it.
                    a.name, integrations[a.integrationId] ?? "?", providers[a.integrationId] ?? "?",
                    a.email.map { ProviderText.displayable($0, limit: 80) } ?? "-",
                    Format.remaining(a.accessExpiresAt, now: now), Format.remaining(a.refreshExpiresAt, now: now),
                    state(a),
                ])
            }
            context.console.out(Table.render(rows))
        }
    }
}
