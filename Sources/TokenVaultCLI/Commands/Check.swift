import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Check: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Exit 0 when no account needs a person, 5 when some do, one line each (no passphrase needed).",
            discussion: """
                An account needs a person when it needs re-authorization, when its refresh token lapses within 14 days \
                (refreshing has not extended it), when refreshing has failed for more than 24 hours, or when it has \
                no refresh token and its access token lapses within 14 days. Account names, or --integration, limit the \
                check to those accounts. For monitoring: 'list --format prometheus'.

                --notify CMD runs CMD through /bin/sh once per account and event (needs-reauth, \
                refresh-token-lapsing, refresh-failing, access-token-lapsing, pair-not-stored, refresh-interrupted) \
                until it changes, with TOKENVAULT_ACCOUNT, TOKENVAULT_INTEGRATION, TOKENVAULT_EVENT and \
                TOKENVAULT_DETAIL in its environment; never a token or the passphrase.

                Examples:
                  tokenvault check
                  tokenvault check --json --integration work
                  tokenvault check --notify 'notify-send "tokenvault: $TOKENVAULT_ACCOUNT" "$TOKENVAULT_DETAIL"'
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: AccountSelection

        @Flag(help: "Print JSON.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "Also run this command (through /bin/sh) once per account and event, as refresh-all --notify does.",
                valueName: "cmd"))
        var notify: String?

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let journal = RefreshJournal.of(database, services: context.services)
            var found = try Attention.find(
                in: database, now: context.now(), waiting: journal?.waitingPairs().values.map { $0 } ?? [],
                interrupted: await journal?.interruptedRefreshes(in: database) ?? [])
            // The accounts looked at: --notify forgets what it told only about those.
            var inScope: (String) -> Bool = { _ in true }
            if !selection.selectsAll {
                let matches = try selection.matcher(database)
                let ids = Dictionary(
                    try database.integrations().map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
                found = found.filter { matches($0.account, ids[$0.integration] ?? "") }
                let selected = Set(
                    try database.accountSummaries().filter { matches($0.name, $0.integrationId) }.map(\.name))
                inScope = { selected.contains($0) }
            }
            if json {
                context.console.out(Format.json(found.map(AttentionReport.init)) + "\n")
            } else if found.isEmpty {
                context.console.err("No account needs anyone.\n")
            } else {
                for item in found {
                    // The detail may quote the audit log (a failed refresh's words): cleaned like any stored text.
                    context.console.out(
                        ProviderText.displayable(
                            "\(item.account) (\(item.integration)): \(item.event.rawValue): \(item.detail)", limit: 1000
                        ) + "\n")
                }
            }
            if let notify {
                try await Notifier.notify(
                    notify, attention: found, database: database, context: context, inScope: inScope)
            }
            if !found.isEmpty { throw CommandExit(code: .needsReauthorization) }
        }
    }
}
