import Foundation
import Synchronization
import VaultCrypto
import VaultStore

/// What the token endpoint answers for one request (`GET /v1/accounts/NAME/token`): the access token of an
/// account, refreshed first when it lapses within `minValid`, to a peer allowed to have it. Never a refresh
/// token, a client secret or a key: the answer is built from the access token and plain metadata alone.
///
/// Concurrent requests for the same account share one lookup (and so at most one refresh); refreshes across
/// processes are serialized by the account's refresh lock as for every other command.
public final class TokenLender: Sendable {
    /// Who may ask for what.
    public struct Policy: Sendable {
        /// The vault's owner (this process's uid): every account, or only `accounts` when set (`exec --serve`).
        public var ownerUID: UInt32
        public var accounts: Set<String>?
        /// Whether other uids are served at all (by their grants): `serve`; the agent's and `exec --serve`'s
        /// sockets are the owner's alone.
        public var lendToOthers: Bool
        /// The trigger of the refreshes and `lent` entries ("serve", "agent", "exec --serve").
        public var trigger: AuditTrigger

        public init(ownerUID: UInt32, accounts: Set<String>? = nil, lendToOthers: Bool, trigger: AuditTrigger) {
            self.ownerUID = ownerUID
            self.accounts = accounts
            self.lendToOthers = lendToOthers
            self.trigger = trigger
        }
    }

    /// The JSON the endpoint answers with (the field names of an OAuth token response, RFC 6749 section 5.1,
    /// where they mean the same).
    public struct Lent: Sendable, Codable, Equatable {
        public var accessToken: String
        public var tokenType: String
        public var expiresAt: String?
        public var expiresIn: Int?
        public var account: String
        public var integration: String

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case tokenType = "token_type"
            case expiresAt = "expires_at"
            case expiresIn = "expires_in"
            case account, integration
        }
    }

    /// What only the owner is told besides the JSON (as header fields): the integration's variable, checked
    /// against its sealed copy (`env` through the agent prints it), and the warnings the lookup gave.
    public struct OwnerNotes: Sendable, Equatable {
        public var variable: String
        public var warnings: [String]
    }

    public enum Answer: Sendable {
        case token(Lent, owner: OwnerNotes?)
        /// HTTP status and a message that names no secret.
        case refused(Int, String)
    }

    let service: TokenService
    let policy: Policy
    let minValid: TimeInterval
    private let state = Mutex(State())

    private struct State {
        var inFlight: [String: Task<Result<Found, LookupFailure>, Never>] = [:]
        /// The synchronous lookups under way (``answerNow``).
        var flights: [String: Flight] = [:]
        /// The grants as of the audit head they were read at.
        var grants: (head: [UInt8], seq: Int64, grants: [Grant])?
        /// (account, `lent` detail) already audited: once per grantee and token, not per request.
        var lent: Set<String>?
    }

    struct Found: Sendable {
        var token: String
        var account: Account
        var integration: Integration
        var warnings: [String]
    }

    struct LookupFailure: Error {
        var status: Int
        var message: String
    }

    public init(service: TokenService, policy: Policy, minValid: TimeInterval) {
        self.service = service
        self.policy = policy
        self.minValid = minValid
    }

    /// Who asked for what, once the policy let it through.
    struct Admitted: Sendable {
        var name: String
        var isOwner: Bool
        var uid: UInt32
        var minValid: TimeInterval
        var trigger: AuditTrigger
    }

    /// The policy's decision, synchronous (the grants may be read from the store): the request admitted, or the
    /// answer that refuses it. The owner may also say, in the query, `min_valid=SECONDS` (instead of the lender's
    /// margin) and `trigger=env|token` (what a refresh is audited as): `env` and `token` through the agent. Another
    /// uid's query is ignored.
    func admit(path: String, query: String, uid: UInt32, groups: [UInt32]) -> Result<Admitted, LookupFailure> {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "accounts", parts[4] == "token",
            let name = String(parts[3]).removingPercentEncoding, !name.isEmpty
        else {
            return .failure(LookupFailure(status: 404, message: "no such endpoint; ask GET /v1/accounts/NAME/token"))
        }
        let isOwner = uid == policy.ownerUID
        var admitted = Admitted(name: name, isOwner: isOwner, uid: uid, minValid: minValid, trigger: policy.trigger)
        if isOwner {
            if let only = policy.accounts, !only.contains(name) {
                return .failure(LookupFailure(status: 403, message: "account '\(name)' is not lent to this process"))
            }
            for pair in query.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { continue }
                if kv[0] == "min_valid", let seconds = Int(kv[1]), (0...90 * 86_400).contains(seconds) {
                    admitted.minValid = TimeInterval(seconds)
                } else if kv[0] == "trigger", kv[1] == "env" || kv[1] == "token" {
                    admitted.trigger = AuditTrigger(kv[1])
                }
            }
            return .success(admitted)
        }
        guard policy.lendToOthers else {
            return .failure(LookupFailure(status: 403, message: "this endpoint serves its owner only"))
        }
        switch isGranted(name, uid: uid, groups: groups) {
        case .success(true): return .success(admitted)
        case .success(false):
            return .failure(LookupFailure(status: 403, message: "no grant for uid \(uid) to account '\(name)'"))
        case .failure(let failure): return .failure(failure)
        }
    }

    /// The answer when it needs no refresh, synchronously, on the caller's thread (the endpoint's connection
    /// thread, where blocking on the store is fine): nil when a refresh is due, for ``answer(path:query:uid:groups:)``.
    public func answerNow(path: String, query: String = "", uid: UInt32, groups: [UInt32]) -> Answer? {
        let admitted: Admitted
        switch admit(path: path, query: query, uid: uid, groups: groups) {
        case .failure(let failure): return .refused(failure.status, failure.message)
        case .success(let a): admitted = a
        }
        // Threads asking for one account at once share one read (the store serializes them anyway).
        let key = "\(admitted.name)\n\(admitted.minValid)"
        let (flight, mine) = state.withLock { state -> (Flight, Bool) in
            if let running = state.flights[key] { return (running, false) }
            let flight = Flight()
            state.flights[key] = flight
            return (flight, true)
        }
        if mine {
            let outcome: Result<Found, LookupFailure>?
            do {
                outcome = try service.storedTokenIfFresh(account: admitted.name, minValid: admitted.minValid).map {
                    .success(Found(token: $0.token, account: $0.account, integration: $0.integration, warnings: []))
                }
            } catch {
                outcome = .failure(Self.failure(error, name: admitted.name))
            }
            state.withLock { _ = $0.flights.removeValue(forKey: key) }
            flight.land(outcome)
        }
        guard let outcome = flight.wait() else { return nil }
        return finish(outcome, admitted)
    }

    /// One synchronous lookup that other threads asking for the same account wait for.
    final class Flight: @unchecked Sendable {
        private let condition = NSCondition()
        private var landed = false
        private var outcome: Result<Found, LookupFailure>?

        func land(_ outcome: Result<Found, LookupFailure>?) {
            condition.lock()
            self.outcome = outcome
            landed = true
            condition.broadcast()
            condition.unlock()
        }

        /// The outcome (nil: a refresh is due).
        func wait() -> Result<Found, LookupFailure>? {
            condition.lock()
            defer { condition.unlock() }
            while !landed { condition.wait() }
            return outcome
        }
    }

    /// The answer to a request for `path` from a peer of `uid` and `groups`, refreshing first when due.
    public func answer(path: String, query: String = "", uid: UInt32, groups: [UInt32]) async -> Answer {
        let decided = try? await BlockingWork.run { self.admit(path: path, query: query, uid: uid, groups: groups) }
        guard let decided else { return .refused(500, "the request could not be checked") }
        switch decided {
        case .failure(let failure): return .refused(failure.status, failure.message)
        case .success(let admitted):
            let result = await lookUp(admitted.name, minValid: admitted.minValid, trigger: admitted.trigger)
            return (try? await BlockingWork.run { self.finish(result, admitted) })
                ?? .refused(500, "the answer could not be made")
        }
    }

    /// The answer for a lookup's result: a loan to another uid audited (synchronously) first.
    func finish(_ result: Result<Found, LookupFailure>, _ admitted: Admitted) -> Answer {
        switch result {
        case .failure(let failure):
            // Another user learns nothing about which names exist.
            if !admitted.isOwner && failure.status == 404 {
                return .refused(403, "no grant for uid \(admitted.uid) to account '\(admitted.name)'")
            }
            return .refused(failure.status, failure.message)
        case .success(let found):
            if !admitted.isOwner {
                do { try auditLent(found.account, integration: found.integration.name, uid: admitted.uid) } catch {
                    return .refused(500, "could not audit the loan: \(error.localizedDescription)")
                }
            }
            let now = service.services.now()
            let expiry = found.account.accessExpiresAt
            return .token(
                Lent(
                    accessToken: found.token, tokenType: "Bearer", expiresAt: expiry.map { Format.timestamp($0) },
                    expiresIn: expiry.map { max(0, Int($0.timeIntervalSince(now))) },
                    account: found.account.name, integration: found.integration.name),
                owner: admitted.isOwner
                    ? OwnerNotes(variable: found.integration.envVar, warnings: found.warnings) : nil)
        }
    }

    /// An error of a lookup as the status and words of the answer (no secret is in any of them).
    static func failure(_ error: any Error, name: String) -> LookupFailure {
        switch error {
        case let error as StoreError:
            if case .noSuchAccount = error { return LookupFailure(status: 404, message: "no account named '\(name)'") }
            return LookupFailure(status: 500, message: error.localizedDescription)
        case let error as VaultError:
            switch error {
            case .needsReauthorization, .accessTokenExpired, .provider:
                return LookupFailure(status: 502, message: error.localizedDescription)
            default: return LookupFailure(status: 500, message: error.localizedDescription)
            }
        default: return LookupFailure(status: 500, message: error.localizedDescription)
        }
    }

    /// The account's fresh token; concurrent callers for one account (and margin and trigger) share one lookup.
    private func lookUp(_ name: String, minValid: TimeInterval, trigger: AuditTrigger) async -> Result<
        Found, LookupFailure
    > {
        let key = "\(name)\n\(minValid)\n\(trigger)"
        let (task, mine) = state.withLock { state in
            if let running = state.inFlight[key] { return (running, false) }
            let task = Task { await self.lookUpAlone(name, minValid: minValid, trigger: trigger) }
            state.inFlight[key] = task
            return (task, true)
        }
        let result = await task.value
        if mine { _ = state.withLock { $0.inFlight.removeValue(forKey: key) } }
        return result
    }

    private func lookUpAlone(_ name: String, minValid: TimeInterval, trigger: AuditTrigger) async -> Result<
        Found, LookupFailure
    > {
        let database = service.vault.database
        // The lookup's warnings go to this process's console as always, and to the owner with the answer.
        let console = CollectingConsole(passingTo: service.services.console)
        var services = service.services
        services.console = console
        let service = TokenService(vault: service.vault, services: services, verbose: service.verbose)
        do {
            let (account, integration) = try await BlockingWork.run { () throws -> (Account, Integration) in
                let account = try database.account(named: name)
                guard let integration = try database.integration(id: account.integrationId) else {
                    throw StoreError.noSuchIntegration(account.integrationId)
                }
                return (account, integration)
            }
            let (token, row) = try await service.freshAccessTokenAndRow(
                account: account, integration: integration, minValid: minValid, trigger: trigger)
            return .success(Found(token: token, account: row, integration: integration, warnings: console.collected))
        } catch {
            return .failure(Self.failure(error, name: name))
        }
    }

    /// Whether a grant covers `uid` or one of `groups` for `name`: the grants are read again (and the log verified)
    /// whenever the audit log's head moved, so an `ungrant` counts from the next request.
    private func isGranted(_ name: String, uid: UInt32, groups: [UInt32]) -> Result<Bool, LookupFailure> {
        let vault = service.vault
        do {
            let head = try vault.database.auditHead()
            let cached = state.withLock { state in
                state.grants.flatMap { $0.seq == head.seq && $0.head == head.mac ? $0.grants : nil }
            }
            let grants: [Grant]
            if let cached {
                grants = cached
            } else {
                grants = try vault.grants()
                state.withLock { $0.grants = (head.mac, head.seq, grants) }
            }
            return .success(
                grants.contains { grant in
                    guard grant.account == name else { return false }
                    switch grant.grantee {
                    case .uid(let n): return n == uid
                    case .gid(let n): return groups.contains(n)
                    }
                })
        } catch {
            return .failure(
                LookupFailure(status: 500, message: "the grants cannot be read: \(error.localizedDescription)"))
        }
    }

    /// Audits a hand-out to another uid once per (grantee, account, token); synchronous (blocks on the store).
    private func auditLent(_ account: Account, integration: String, uid: UInt32) throws {
        let vault = service.vault
        if state.withLock({ $0.lent == nil }) {
            let earlier = Set(
                try vault.database.auditEntries().filter { $0.draft.event == .lent }.map {
                    $0.draft.account + "\n" + ($0.draft.detail ?? "")
                })
            state.withLock { if $0.lent == nil { $0.lent = earlier } }
        }
        let key = account.name + "\n" + UnlockedVault.lentDetail(uid: uid, account: account)
        let isNew = state.withLock { $0.lent!.insert(key).inserted }
        guard isNew else { return }
        do {
            try vault.recordLent(
                account: account, integration: integration, uid: uid, trigger: policy.trigger,
                now: service.services.now())
        } catch {
            _ = state.withLock { $0.lent!.remove(key) }
            throw error
        }
    }

    /// The answer's JSON (sorted keys: one form, whatever the platform's dictionary order).
    public static func json(_ lent: Lent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(lent)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// A console that keeps the warnings a lookup gives (for its answer) and passes everything on.
final class CollectingConsole: Console, Sendable {
    let base: any Console
    private let lines = Mutex<[String]>([])

    init(passingTo base: any Console) { self.base = base }

    func out(_ text: String) { base.out(text) }
    func err(_ text: String) {
        base.err(text)
        let prefix = "tokenvault: warning: "
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            lines.withLock { $0.append(String(line.dropFirst(prefix.count))) }
        }
    }
    var stderrIsTerminal: Bool { false }
    var collected: [String] { lines.withLock { $0 } }
}
