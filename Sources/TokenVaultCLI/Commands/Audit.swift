import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct Audit: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Show the audit log of token lifetime resets; --verify checks its MAC chain.",
            discussion: """
                Every event that changes a token's lifetime or existence: imported, authorized, refreshed, \
                refresh-failed, revoked, access-token-rejected, integration-edited, key-slot-added, key-slot-removed, \
                passphrase-changed, master-key-rotated, tamper-detected; with the command that caused it, the \
                outcome, and the expiries before and after. No secrets. Listing needs no passphrase; --verify does \
                (exit 7 when an entry was edited, reordered or deleted, or an account's row is not the pair the log \
                recorded). A vault rolled back whole to an older copy is found only by a head kept elsewhere: \
                --expect-head.

                Examples:
                  tokenvault audit
                  tokenvault audit alice --json
                  tokenvault audit --verify
                  tokenvault audit --verify --expect-head "$(cat /elsewhere/head)"
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only this account's entries.", completion: .accountNames)
        var account: String?

        @Flag(help: "Print JSON.")
        var json = false

        @Flag(help: "Check every entry's chained MAC and the head record.")
        var verify = false

        @Option(
            help: ArgumentHelp(
                "With --verify: a head printed earlier (by audit --verify or refresh-all --json) that the log must still contain; detects a vault rolled back to an older copy.",
                valueName: "hex"))
        var expectHead: String?

        func validate() throws {
            if let expectHead {
                guard verify else { throw ValidationError("--expect-head needs --verify") }
                guard expectHead.count == 64, expectHead.allSatisfy(\.isHexDigit) else {
                    throw ValidationError("--expect-head takes the 64 hex digits printed as the audit head")
                }
            }
        }

        func run(_ context: Context) async throws {
            if verify {
                let vault = try unlock(context)
                let result = try vault.verifyAudit(expectHead: expectHead)
                // A problem quotes the entry it is about, whose fields anyone who can write the store chose.
                for problem in result.problems {
                    context.console.err("tokenvault: audit: \(ProviderText.displayable(problem, limit: 1000))\n")
                }
                if json {
                    context.console.out(
                        Format.json(
                            AuditVerificationReport(
                                entries: result.count, intact: result.problems.isEmpty, problems: result.problems,
                                head: result.head, headSeq: result.headSeq)) + "\n")
                } else if result.problems.isEmpty {
                    context.console.out(
                        "audit log intact: \(result.count) entries, head \(result.head) (entry \(result.headSeq))\n")
                }
                if !result.problems.isEmpty {
                    throw CLIError.integrity(
                        "the audit log failed verification (\(result.problems.count) problem\(result.problems.count == 1 ? "" : "s"))",
                        hint: "the vault file was modified outside tokenvault; restore it from a backup")
                }
                return
            }
            let database = try openDatabase(context)
            let entries = try database.auditEntries(account: account)
            // A revoked account keeps its entries; a name that never was an account is a typo, as elsewhere.
            if let account, entries.isEmpty { _ = try database.account(named: account) }
            if json {
                context.console.out(Format.json(entries.map(AuditEntryReport.init)) + "\n")
                return
            }
            var rows = [
                [
                    "SEQ", "TIME", "ACCOUNT", "EVENT", "TRIGGER", "OUTCOME", "ACCESS EXPIRY", "REFRESH EXPIRY",
                    "RT CHANGED",
                ]
            ]
            for e in entries {
                let d = e.draft
                rows.append([
                    String(e.seq), Format.timestamp(d.at), d.account, d.event.rawValue, d.trigger.rawValue,
                    d.outcome.rawValue,
                    Self.change(d.accessExpiresBefore, d.accessExpiresAfter),
                    Self.change(d.refreshExpiresBefore, d.refreshExpiresAfter),
                    d.refreshTokenChanged.map { $0 ? "yes" : "no" } ?? "-",
                ])
            }
            context.console.out(Table.render(rows))
        }

        static func change(_ before: Date?, _ after: Date?) -> String {
            "\(before.map(Format.timestamp) ?? "-") -> \(after.map(Format.timestamp) ?? "-")"
        }
    }
}
