import Foundation
import ProviderSandbox

/// What a kill may cost under strict rotation, and the check that it cost exactly that.
///
/// A refresh under strict rotation spends the old refresh token the moment the provider answers; the new pair
/// exists only in that answer until the vault commits it. So a SIGKILL may cost at most the accounts whose refresh
/// was in flight at the kill: the provider had answered (or was answering) and the vault had not stored the pair.
/// `refresh-all --concurrency 8` waits for each commit before it takes the next account, so that is at most 8.
/// Under rotation off or with a grace period a kill costs nothing (checked elsewhere).
///
/// After every run the ledger reads two sides, never a token's text:
/// - the sandbox: each account's rotation chain (initial refresh token, its successor, …) and how often each
///   link was presented;
/// - the vault: `list --json`'s access-token expiry, which says which answer it stored, because the sandbox
///   issues each run's pairs with a lifetime one hour shorter than the run before.
/// An account whose newest link was answered (its predecessor presented once) but never stored is a loss by a
/// kill. A refresh token presented twice is a bug, unless it is a lost account's stored token presented once
/// more by a later run (refused, and the account flagged needs-reauth).
struct StrictLedger {
    static let importedLifetime = 1_209_599
    static let step = 3600
    static let concurrency = 8

    let accounts: [(name: String, refresh: String)]
    /// Run number (1, 2, …) in which each lost account's answer was lost.
    private(set) var lost: [String: Int] = [:]
    private var chainLengths: [String: Int] = [:]
    private(set) var runs = 0
    /// Accounts a kill had cost their pair until the next run stored it from the local journal.
    private(set) var recovered: Set<String> = []
    private(set) var problems: [String] = []
    /// Tokens already reported as sent too often (each is reported once, not after every later run).
    private var overused: Set<String> = []
    /// Lost accounts: how often their stored (spent) token had been presented, and whether they were flagged, at
    /// the last observation. Each later presentation is refused; storing that refusal (needs-reauth) can itself
    /// be cut off by a kill, so it may repeat after killed runs, never after a run that finished.
    private var lostState: [String: (uses: Int, flagged: Bool)] = [:]

    init(accounts: [(name: String, refresh: String)]) {
        self.accounts = accounts
        for a in accounts { chainLengths[a.name] = 1 }
    }

    /// The access-token lifetime the sandbox should give the next run's answers; call it before each run.
    mutating func nextRunLifetime() -> Int {
        runs += 1
        return Self.importedLifetime - Self.step * runs
    }

    struct Observation {
        var lostNow: [String] = []
        var answered = 0
        var flagged: Set<String> = []
    }

    /// Reads both sides after run `runs` ended (killed or not) and the sandbox answered everything it received.
    mutating func observe(
        killed: Bool, chains: [String: [RefreshTokenLink]],
        listed: [String: (state: String, accessExpiresAt: Date?)]
    ) -> Observation {
        var seen = Observation()
        let label = "run \(runs)\(killed ? " (killed)" : "")"
        for (name, _) in accounts {
            guard let chain = chains[name], !chain.isEmpty, let entry = listed[name] else {
                problems.append("\(label): \(name) missing from the sandbox or from list --json")
                continue
            }
            if entry.state == "needs-reauth" { seen.flagged.insert(name) }
            let before = chainLengths[name] ?? 1
            chainLengths[name] = chain.count
            let newLinks = chain.count - before
            seen.answered += max(newLinks, 0)
            if newLinks > 1 { problems.append("\(label): \(name) was refreshed \(newLinks) times in one run") }
            // Which answer the vault holds: the link whose access-token expiry is nearest the stored one.
            guard let stored = entry.accessExpiresAt,
                let held = chain.indices.min(by: { distance(chain[$0], stored) < distance(chain[$1], stored) }),
                distance(chain[held], stored) < Double(Self.step) / 2
            else {
                problems.append("\(label): \(name)'s stored pair matches no answer the sandbox sent")
                continue
            }
            let newest = chain.count - 1
            // A pair a kill left in tokenvault's local journal is stored by the next run: no longer lost.
            if lost[name] != nil && held == newest && chain[newest].uses == 0 {
                lost[name] = nil
                lostState[name] = nil
                recovered.insert(name)
            }
            if held == newest - 1 && chain[newest].uses == 0 && chain[held].uses >= 1 {
                // Answered, never stored.
                if lost[name] == nil {
                    if newLinks == 1 {
                        lost[name] = runs
                        seen.lostNow.append(name)
                    } else {
                        problems.append(
                            "\(label): \(name) holds an answer older than the newest, from an earlier run that did not record it"
                        )
                    }
                }
            } else if held != newest {
                problems.append(
                    "\(label): \(name) holds pair \(held) of \(newest) (not the newest, not the one before)")
            }
            let flaggedNow = entry.state == "needs-reauth"
            if lost[name] != nil, newest >= 1 {
                let uses = chain[newest - 1].uses
                let last = lostState[name] ?? (uses: 1, flagged: false)
                if uses > last.uses {
                    if last.flagged {
                        problems.append(
                            "\(label): \(name) was flagged needs-reauth, yet its refresh token was sent again")
                    } else if !flaggedNow && !killed {
                        problems.append(
                            "\(label): \(name)'s spent refresh token was refused in a run that finished, and the account is not flagged"
                        )
                    }
                }
                lostState[name] = (uses, flaggedNow)
            }
            for (i, link) in chain.enumerated() {
                // A lost account's stored token is presented again until its refusal is stored (checked above).
                if lost[name] != nil && i == newest - 1 { continue }
                if link.uses > 1, overused.insert("\(name)#\(i)").inserted {
                    problems.append(
                        "\(label): \(name)'s refresh token \(i) was sent \(link.uses) times"
                            + (lost[name] == nil
                                ? " though its answer was stored (a refresh token sent twice, not a loss)" : ""))
                }
            }
            if entry.state == "needs-reauth" && lost[name] == nil {
                problems.append("\(label): \(name) is flagged needs-reauth though no kill cost it its pair")
            }
        }
        if !killed && !seen.lostNow.isEmpty {
            problems.append(
                "\(label): a run that was not killed lost \(seen.lostNow.count) pairs: \(seen.lostNow.prefix(3).joined(separator: ", "))"
            )
        }
        if seen.lostNow.count > Self.concurrency {
            problems.append(
                "\(label): one kill cost \(seen.lostNow.count) pairs, more than the \(Self.concurrency) refreshes that can be in flight"
            )
        }
        return seen
    }

    private func distance(_ link: RefreshTokenLink, _ stored: Date) -> Double {
        link.accessExpiresAt.map { abs($0.timeIntervalSince(stored)) } ?? .infinity
    }
}
