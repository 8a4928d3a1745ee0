import ArgumentParser
import Foundation
import Synchronization
import TokenVaultCore
import VaultAgent
import VaultOAuth
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

extension TokenVault {
    struct RefreshAll: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "refresh-all",
            abstract: "Refresh every account's token pair (for cron): lifetimes reset, every result audited.",
            discussion: """
                One passphrase prompt for the whole run. Accounts refreshed by another run in the last --skip-recent \
                (default 10m) are left alone, so overlapping runs never send a refresh token twice; an account another \
                process is refreshing is left for the end of the run, so runs started at once (on several hosts of a \
                shared vault) split the work. Accounts that need \
                re-authorization are reported and not retried; accounts without a refresh token are skipped (one line \
                each) while their access token is valid, and need re-authorization once it has lapsed. Exit 0 when all succeeded, 5 when some need \
                re-authorization, 6 when some failed for provider or network reasons (5 wins when both), 7 when an account \
                failed its integrity check (7 wins over all), 1 when an account's lock was refused or stayed held, or the \
                vault's store failed (before 5 and 6). A new pair the store could not take waits in a local journal and \
                is stored by the next command that unlocks the vault; once the store has failed for --store-wait, no \
                more refresh tokens are sent.

                Account names, or --integration, limit the run to those accounts (all must exist: exit 4 otherwise). \
                Before any refresh: 2 a bad argument, 3 a wrong or missing passphrase, 4 no such vault, account or \
                integration, 7 a vault that fails its checks at unlock.

                Examples (the last one a crontab line: cron's PATH is /usr/bin:/bin, so give the full path of \
                tokenvault, as 'command -v tokenvault' shows it):
                  tokenvault refresh-all --due-within 3d --json > report.json
                  tokenvault refresh-all alice bob --integration gmail
                  17 3 * * *  TOKENVAULT_PASSPHRASE_FILE=$HOME/.config/tokenvault/passphrase /usr/local/bin/tokenvault refresh-all
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: AccountSelection

        @Option(help: "How many refreshes run at once.")
        var concurrency: Int = 8

        @Option(
            help: ArgumentHelp(
                "Only accounts whose access token lapses within this (e.g. 1d, 12h).", valueName: "duration"))
        var dueWithin: DurationArgument?

        @Option(
            help: ArgumentHelp(
                "Leave accounts whose pair changed within this (0 refreshes everything).", valueName: "duration"))
        var skipRecent: DurationArgument = DurationArgument(seconds: 600)

        @Option(
            help: ArgumentHelp(
                "Once a write to the vault's store fails, how long it is retried (with backoff, no refresh token sent meanwhile) before the run stops.",
                valueName: "duration"))
        var storeWait: DurationArgument = DurationArgument(seconds: 60)

        @Flag(help: "Print a JSON report on stdout.")
        var json = false

        @Option(
            help: ArgumentHelp(
                "After the run, run this command (through /bin/sh) once per account that needs a person, with TOKENVAULT_ACCOUNT, TOKENVAULT_INTEGRATION, TOKENVAULT_EVENT and TOKENVAULT_DETAIL set; once per account and event until it changes.",
                valueName: "cmd"))
        var notify: String?

        /// The agent's scheduled runs: the notify command arrives on this descriptor, not on the command line.
        @Option(help: .hidden) var notifyFd: Int32?

        func validate() throws {
            guard (1...256).contains(concurrency) else {
                throw ValidationError("--concurrency must be between 1 and 256")
            }
        }

        func run(_ context: Context) async throws {
            var notify = self.notify
            if let notifyFd {
                guard let handed = HandOff.read(from: notifyFd) else {
                    throw CLIError.usage("no notify command arrived on descriptor \(notifyFd)")
                }
                close(notifyFd)
                notify = handed
            }
            let database = try openDatabase(context)
            let start = context.now()
            let started = Date()
            // Found from plain metadata: nothing is decrypted for accounts that are not due.
            // Oldest pair first: an account whose refresh was cut short (a killed run, an outage) is the first one
            // the next run retries, while a rotating provider's grace window for its old token may still be open.
            // A pair stored in the future (ClockAhead) is due whatever its expiries say.
            let due = try
                (dueWithin.map {
                    try database.accounts(
                        accessExpiringBefore: start.addingTimeInterval($0.seconds),
                        orStoredAfter: ClockAhead.limit(now: start))
                } ?? database.accounts()).sorted { ($0.updatedAt, $0.name) < ($1.updatedAt, $1.name) }
                .filter(try selection.includer(database))
            for account in due where ClockAhead.isAhead(account, now: start) {
                context.console.warn(
                    ClockAhead.warning(
                        account: account.name, updatedAt: account.updatedAt, now: start,
                        then: "refreshing it regardless of --skip-recent"))
            }
            // Accounts without a refresh token are left alone while their access token is valid (one line each);
            // once it has lapsed they are needs-reauth like any other (the refresher reports them so).
            let skipped = due.filter { DisplayState($0, now: start) == .noRefresh }
            let candidates = due.filter { DisplayState($0, now: start) != .noRefresh }
            let integrationNames = Dictionary(
                uniqueKeysWithValues: try database.integrations().map { ($0.id, $0.name) })
            let skippedOutcomes = skipped.map { account in
                context.console.err(
                    "refresh-all: skipping '\(account.name)': it has no refresh token; its access token stays valid \(Format.remaining(account.accessExpiresAt, now: start)), then run \(Format.command("tokenvault authorize \(account.name)")).\n"
                )
                return RefreshOutcome(
                    account: account.name, integration: integrationNames[account.integrationId] ?? "?",
                    status: .noRefresh, accessExpiresBefore: account.accessExpiresAt,
                    accessExpiresAfter: account.accessExpiresAt)
            }
            if candidates.isEmpty {
                if !skippedOutcomes.isEmpty {
                    if json {
                        context.console.out(
                            Format.json(
                                Self.report(
                                    skippedOutcomes, start: start, seconds: 0, auditHead: try? database.auditHead()))
                                + "\n")
                    }
                    context.console.err(
                        "refresh-all: nothing to refresh; \(skippedOutcomes.count) skipped (no refresh token).\n")
                    return
                }
                if json {
                    context.console.out(
                        Format.json(Self.report([], start: start, seconds: 0, auditHead: try? database.auditHead()))
                            + "\n")
                }
                context.console.err("refresh-all: nothing to refresh.\n")
                return
            }
            let vault = try unlock(context)
            // After the passphrase: a wrong one leaves everything as it was, the lock directory included.
            try database.checkRefreshLocks()
            var services = context.services
            services.storeWait = storeWait.seconds
            // Pairs an earlier run could not store go in first (their accounts are then fresh, nothing is sent).
            await RefreshJournal.storePending(vault: vault, services: services)
            // The total counts what the summary counts: the accounts skipped for want of a refresh token too.
            let progress = RefreshProgress(
                total: candidates.count + skippedOutcomes.count, skipped: skippedOutcomes.count,
                console: context.console, live: context.console.stderrIsTerminal && !global.verbose)
            let refresher = Refresher(
                vault: vault, services: services, trigger: .refreshAll, verbose: global.verbose,
                onWait: { progress.waiting($0) })
            let recent = skipRecent.seconds
            var outcomes: [RefreshOutcome] = []
            outcomes.reserveCapacity(candidates.count)
            // Two passes. The first tries each account's lock once: an account another process (another host on a
            // shared vault, an `env` refreshing it) holds is left for the second pass, which waits for its lock and
            // then finds it fresh. So runs started at once split the work instead of queueing behind each other,
            // and none sends a refresh token another has already used.
            // Once another process is seen at work (a lock it holds, a pair it stored), each account is read before
            // its lock is taken, and one another process refreshed is left at that: three hosts at once do not each
            // lock and read every account the others did.
            let othersAtWork = SeenFlag()
            func refreshEach(_ list: [Account], firstPass: Bool) async -> [Account] {
                var busy: [Account] = []
                await withTaskGroup(of: (Account, RefreshOutcome).self) { group in
                    var next = 0
                    func addNext() {
                        guard next < list.count else { return }
                        let planned = list[next]
                        next += 1
                        group.addTask {
                            let outcome = await refresher.refresh(
                                planned, lockTimeout: firstPass ? 0 : nil,
                                peek: !firstPass || othersAtWork.isSet
                            ) { current in
                                // Changed since this run read it, or within --skip-recent: someone else refreshed it.
                                // A pair stored in the future is not recent, whatever the clock says.
                                current.updatedAt == planned.updatedAt
                                    && (ClockAhead.isAhead(current, now: start)
                                        || start.timeIntervalSince(current.updatedAt) >= recent)
                            }
                            return (planned, outcome)
                        }
                    }
                    for _ in 0..<min(concurrency, list.count) { addNext() }
                    while let (planned, outcome) = await group.next() {
                        if outcome.lockWasBusy || outcome.status == .alreadyFresh { othersAtWork.set() }
                        if firstPass && outcome.lockWasBusy {
                            busy.append(planned)
                        } else {
                            outcomes.append(outcome)
                            progress.step(outcome.status)
                        }
                        addNext()
                    }
                }
                return busy
            }
            let busy = await refreshEach(candidates, firstPass: true)
            _ = await refreshEach(busy, firstPass: false)
            progress.finish()
            let seconds = Date().timeIntervalSince(started)
            outcomes += skippedOutcomes
            outcomes.sort { $0.account < $1.account }
            let now = context.now()
            for outcome in outcomes {
                switch outcome.status {
                case .needsReauth:
                    context.console.err(
                        "tokenvault: \(outcome.account): needs re-authorization: \(outcome.reason ?? "")\n")
                // Said once for all below: nothing was sent, or the pair waits in the journal.
                case .failed where outcome.notSentStoreFailing: break
                case .pending: break
                case .failed:
                    context.console.err("tokenvault: \(outcome.account): refresh failed: \(outcome.reason ?? "")\n")
                default: if let warning = outcome.lapseWarning(now: now) { context.console.warn("\(warning)") }
                }
            }
            let notSent = outcomes.filter(\.notSentStoreFailing).count
            let pending = outcomes.filter { $0.status == .pending }.count
            if notSent + pending > 0 {
                let journal = RefreshJournal.of(database, services: services)?.directory ?? "the local journal"
                let why =
                    refresher.storeHealth.downError?.localizedDescription
                    ?? outcomes.first(where: { $0.notSentStoreFailing || $0.status == .pending })?.reason
                    ?? "unknown error"
                context.console.err(
                    "tokenvault: error: the vault's store failed, refresh-all stopped sending refresh tokens: \(notSent) account\(notSent == 1 ? "" : "s") not refreshed (nothing sent), \(pending) new pair\(pending == 1 ? "" : "s") waiting in \(journal) (\(why))\n"
                )
                context.console.err(
                    "tokenvault: hint: once the store works again, run 'tokenvault refresh-all' (or any command that unlocks the vault): it stores the waiting pairs first, then refreshes the rest\n"
                )
            }
            let count = { (s: RefreshOutcome.Status) in outcomes.filter { $0.status == s }.count }
            let skippedNote = skippedOutcomes.isEmpty ? "" : ", \(skippedOutcomes.count) skipped (no refresh token)"
            let pendingNote = pending == 0 ? "" : ", \(pending) waiting in the local journal"
            context.console.err(
                "refresh-all: \(count(.refreshed)) refreshed, \(count(.alreadyFresh)) already fresh, \(count(.needsReauth)) need re-authorization, \(count(.failed)) failed\(pendingNote)\(skippedNote), of \(outcomes.count) in \(String(format: "%.1f", seconds)) s.\n"
            )
            if json {
                context.console.out(
                    Format.json(
                        Self.report(outcomes, start: start, seconds: seconds, auditHead: try? database.auditHead()))
                        + "\n")
            }
            if let notify {
                let journal = RefreshJournal.of(database, services: services)
                try await Notifier.notify(
                    notify,
                    attention: try Attention.find(
                        in: database, now: context.now(),
                        waiting: journal?.waitingPairs().values.map { $0 } ?? [],
                        interrupted: await journal?.interruptedRefreshes(in: database) ?? []), database: database,
                    context: context)
            }
            if outcomes.contains(where: { $0.failureCode == .integrity }) { throw CommandExit(code: .integrity) }
            // A local problem (an account's lock refused or stuck) is the user's to fix, not the provider's.
            if outcomes.contains(where: { $0.failureCode == .other }) { throw CommandExit(code: .other) }
            if count(.needsReauth) > 0 { throw CommandExit(code: .needsReauthorization) }
            if count(.failed) > 0 { throw CommandExit(code: .provider) }
        }

        /// `auditHead`: the log's head after the run, for keeping elsewhere and checking later with
        /// `audit --verify --expect-head` (a vault rolled back to an older copy no longer contains it).
        static func report(
            _ outcomes: [RefreshOutcome], start: Date, seconds: Double,
            auditHead: (seq: Int64, mac: [UInt8])?
        ) -> RefreshAllReport {
            let count = { (s: RefreshOutcome.Status) in outcomes.filter { $0.status == s }.count }
            return RefreshAllReport(
                startedAt: start, durationSeconds: (seconds * 1000).rounded() / 1000,
                total: outcomes.count, refreshed: count(.refreshed), fresh: count(.alreadyFresh),
                needsReauth: count(.needsReauth), failed: count(.failed), skipped: count(.noRefresh),
                pending: count(.pending),
                accounts: outcomes.map(RefreshOutcomeReport.init),
                auditHead: auditHead.map { UnlockedVault.hex($0.mac) }, auditHeadSeq: auditHead?.seq)
        }
    }
}

/// Set once, read by many tasks.
final class SeenFlag: Sendable {
    private let seen = Mutex(false)
    var isSet: Bool { seen.withLock { $0 } }
    func set() { seen.withLock { $0 = true } }
}
