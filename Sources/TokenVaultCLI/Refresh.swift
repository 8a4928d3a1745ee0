import ArgumentParser
import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore
#if canImport(Glibc)
import Glibc
#endif

/// One refresh at a time per account, across processes: an advisory lock (flock) on a file per account, which
/// the kernel releases if the process dies. It is held across the network call; no database transaction is.
///
/// The lock directory sits beside the vault's real path (two symlinked paths to one vault share it) and must be
/// ours: a directory or file another user made, a symlink, or anything writable by others could let them hold our
/// locks (blocking every refresh) or point them elsewhere. Such a lock is refused with a clear error, not waited on.
final class AccountLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func directory(forVault path: String) -> String { (realPath(path) ?? path) + ".locks" }

    /// The path with every symlink resolved, or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = Glibc.realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func acquire(vaultPath: String, account: Account, timeout: TimeInterval = 300,
                        sleep: @Sendable (Double) async throws -> Void) async throws -> AccountLock {
        let dir = directory(forVault: vaultPath)
        let dirFD = try openPrivateDirectory(dir)
        defer { Glibc.close(dirFD) }
        let name = "\(account.id).lock"
        let path = "\(dir)/\(name)"
        let fd = openat(dirFD, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP { throw CLIError.unsafeLockPath(path: path, reason: "it is a symbolic link") }
            throw CLIError.usage("cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        do {
            try checkOwned(fd, path: path, kind: S_IFREG, kindName: "a regular file")
        } catch {
            Glibc.close(fd)
            throw error
        }
        fchmod(fd, 0o600)
        let deadline = Date().addingTimeInterval(timeout)
        // Non-blocking tries with short sleeps: a blocking flock would park a thread of the small async pool.
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                Glibc.close(fd)
                throw CLIError.usage("cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            guard Date() < deadline else {
                Glibc.close(fd)
                throw CLIError.busy("account '\(account.name)' stayed locked by another tokenvault process for \(Int(timeout)) s",
                                     hint: "is another refresh stuck? 'fuser \(path)' shows who holds it")
            }
            try? await Task.sleep(for: .milliseconds(15))
        }
        return AccountLock(fd: fd)
    }

    /// Refuses an unsafe lock directory up front, before any passphrase or refresh: one clear error (exit 1)
    /// instead of one failure per account.
    static func checkDirectory(vaultPath: String) throws {
        Glibc.close(try openPrivateDirectory(directory(forVault: vaultPath)))
    }

    /// Creates the lock directory 0700 if needed and opens it without following a symlink; then checks, on the
    /// opened directory itself (no race with a rename), that it is ours and that no one else can write in it.
    private static func openPrivateDirectory(_ dir: String) throws -> Int32 {
        _ = mkdir(dir, 0o700)
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP || errno == ENOTDIR {
                var info = stat()
                let isLink = lstat(dir, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
                throw CLIError.unsafeLockPath(path: dir, reason: isLink ? "it is a symbolic link" : "it is not a directory")
            }
            throw CLIError.usage("cannot open the lock directory \(dir): \(String(cString: strerror(errno)))")
        }
        do {
            let mode = try checkOwned(fd, path: dir, kind: S_IFDIR, kindName: "a directory")
            // Ours and not writable by others, but readable: make it private (the umask may have let bits through).
            if mode & 0o077 != 0 { fchmod(fd, 0o700) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Refuses an opened lock path of the wrong kind, owned by someone else, or writable by group or others.
    @discardableResult
    private static func checkOwned(_ fd: Int32, path: String, kind: mode_t, kindName: String) throws -> mode_t {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CLIError.usage("cannot inspect \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == kind else { throw CLIError.unsafeLockPath(path: path, reason: "it is not \(kindName)") }
        guard info.st_uid == geteuid() else {
            throw CLIError.unsafeLockPath(path: path, reason: "it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            throw CLIError.unsafeLockPath(path: path, reason: "it is writable by group or others (mode \(String(mode, radix: 8)))")
        }
        return mode
    }

    /// Closing the descriptor releases the lock.
    func release() { Glibc.close(fd) }
}

/// `--verbose` request traces (already redacted by the transport) on stderr.
enum Trace {
    static func tracer(_ console: any Console) -> URLSessionTransport.Tracer {
        { line in console.err("tokenvault: http: \(line)\n") }
    }
}

/// What became of one account in a refresh.
struct RefreshOutcome: Sendable {
    enum Status: String, Sendable {
        case refreshed
        /// Another process refreshed it while we waited for the lock (or just before): nothing was sent.
        case alreadyFresh = "fresh"
        case needsReauth = "needs-reauth"
        case failed
        /// No refresh token and a valid access token (`DisplayState.noRefresh`): left alone, nothing was sent.
        case noRefresh = "no-refresh"
    }

    var account: String
    var integration: String
    var status: Status
    var accessExpiresBefore: Date?
    var accessExpiresAfter: Date?
    var refreshExpiresBefore: Date?
    var refreshExpiresAfter: Date?
    var refreshTokenChanged: Bool?
    var error: String?
    /// What to do about the failure (the error's hint), when there is one.
    var hint: String?
    var trackingId: String?
    /// The exit code the failure maps to (6 provider, 7 integrity, …); nil when it did not fail.
    var failureCode: ExitCode?
}

/// A wait between two attempts, as a progress line shows it.
struct RetryWait: Sendable, Equatable {
    var seconds: Double
    /// The provider asked for it (429 with Retry-After), rather than our own backoff.
    var retryAfter: Bool
}

extension RetryPolicy {
    /// `run(sleep:_:)`, telling `onWait` when each wait starts (the wait) and ends (nil).
    func run<T>(sleep: @Sendable (Double) async throws -> Void, onWait: (@Sendable (RetryWait?) -> Void)?,
                _ op: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await op()
            } catch {
                guard let wait = delay(forAttempt: attempt, error: error) else { throw error }
                onWait?(RetryWait(seconds: wait, retryAfter: (error as? OAuthError)?.retryAfter != nil))
                defer { onWait?(nil) }
                try await sleep(wait)
            }
        }
    }
}

/// Gives every request sent through it a share of one time budget that starts with the first request: once it is
/// spent, a request still waiting fails as timed out and further ones fail at once. Measured on the real clock,
/// because it bounds real network waits (a stalled provider), which no test clock can step.
struct DeadlineTransport: HTTPTransport {
    let inner: any HTTPTransport
    let budget: TimeInterval
    private let start = StartOnce()

    init(inner: any HTTPTransport, budget: TimeInterval) {
        self.inner = inner
        self.budget = budget
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let host = request.url.host.map { h in request.url.port.map { "\(h):\($0)" } ?? h } ?? "?"
        let remaining = start.instant().advanced(by: .milliseconds(Int64(budget * 1000))) - ContinuousClock.now
        guard remaining > .zero else { throw OAuthError.transport(.timedOut, host: host) }
        let once = ResumeOnce()
        let inner = inner
        // Not a task group: a group waits for its cancelled child, and a stalled request may not stop at once.
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            let work = Task {
                let result: Result<HTTPResponse, any Error>
                do { result = .success(try await inner.send(request)) } catch { result = .failure(error) }
                once.resume(result)
            }
            Task {
                try? await Task.sleep(for: remaining)
                once.resume(.failure(OAuthError.transport(.timedOut, host: host)))
                work.cancel()
            }
        }
    }

    private final class StartOnce: @unchecked Sendable {
        private let lock = NSLock()
        private var started: ContinuousClock.Instant?
        func instant() -> ContinuousClock.Instant {
            lock.withLock {
                if let started { return started }
                let now = ContinuousClock.now
                started = now
                return now
            }
        }
    }

    private final class ResumeOnce: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<HTTPResponse, any Error>?

        func set(_ c: CheckedContinuation<HTTPResponse, any Error>) { lock.withLock { continuation = c } }

        /// The first result wins; later ones are dropped.
        func resume(_ result: Result<HTTPResponse, any Error>) {
            let target = lock.withLock {
                defer { continuation = nil }
                return continuation
            }
            target?.resume(with: result)
        }
    }
}

/// Refreshes token pairs: the provider's answer is durably stored (and audited) before anything else happens.
final class Refresher: @unchecked Sendable {
    let vault: UnlockedVault
    let context: Context
    let trigger: String
    let transport: any HTTPTransport
    let retry: RetryPolicy
    private let committer: GroupCommitter
    private let lock = NSLock()
    private var clients: [String: OAuthClient] = [:]
    private var integrations: [String: Integration] = [:]

    /// Eight attempts: a nightly run rides out a provider's bad minutes (about two minutes of capped, jittered
    /// backoff at worst) rather than leaving accounts for tomorrow; invalid_grant is never retried.
    static let retryPolicy = RetryPolicy(maxAttempts: 8)

    /// Refresh-on-use while the stored access token is still valid: the token in hand is good, so a provider that
    /// is down, stalls or answers 429/5xx is given about two seconds in all (`RefreshBudget`), not the nightly policy.
    static let quickRetryPolicy = RetryPolicy(maxAttempts: 2, base: 0.25, cap: 0.25, maxRetryAfter: 1)

    /// Seconds an account's lock is waited for (another process refreshing it).
    let lockTimeout: TimeInterval
    /// Told about each wait between attempts (refresh-all's progress line shows it).
    let onWait: (@Sendable (RetryWait?) -> Void)?

    init(vault: UnlockedVault, context: Context, trigger: String, verbose: Bool, retry: RetryPolicy = Refresher.retryPolicy,
         budget: TimeInterval? = nil, lockTimeout: TimeInterval = 300, onWait: (@Sendable (RetryWait?) -> Void)? = nil) {
        self.vault = vault
        self.context = context
        self.trigger = trigger
        self.retry = retry
        self.lockTimeout = lockTimeout
        self.onWait = onWait
        committer = GroupCommitter(database: vault.database)
        let transport = context.makeTransport(verbose ? Trace.tracer(context.console) : nil)
        self.transport = budget.map { DeadlineTransport(inner: transport, budget: $0) } ?? transport
    }

    /// The integration and its client, opened once per integration and command.
    func client(for integrationId: String) throws -> (Integration, OAuthClient) {
        lock.lock()
        defer { lock.unlock() }
        if let client = clients[integrationId], let integration = integrations[integrationId] { return (integration, client) }
        guard let integration = try vault.database.integration(id: integrationId) else {
            throw StoreError.noSuchIntegration(integrationId)
        }
        let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
        clients[integrationId] = client
        integrations[integrationId] = integration
        return (integration, client)
    }

    /// Refreshes `account` unless, once its lock is held and it is read again, `stillNeeded` says another
    /// process already did the work. The lock makes sure no refresh token is ever sent twice at once.
    func refresh(_ planned: Account, stillNeeded: @Sendable (Account) -> Bool) async -> RefreshOutcome {
        var outcome = RefreshOutcome(account: planned.name, integration: "?", status: .failed)
        do {
            let (integration, client) = try client(for: planned.integrationId)
            outcome.integration = integration.name
            let lock = try await AccountLock.acquire(vaultPath: vault.database.path, account: planned, timeout: lockTimeout,
                                                     sleep: context.sleep)
            defer { lock.release() }
            // Read again under the lock: the pair may have changed while we waited.
            var account = try await vault.database.accountAsync(named: planned.name)
            guard account.id == planned.id else { throw StoreError.noSuchAccount(planned.name) }
            outcome.accessExpiresBefore = account.accessExpiresAt
            outcome.refreshExpiresBefore = account.refreshExpiresAt
            if account.state == .needsReauth {
                outcome.status = .needsReauth
                outcome.error = "the provider refused its refresh token earlier"
                return outcome
            }
            guard stillNeeded(account) else {
                outcome.status = .alreadyFresh
                outcome.accessExpiresAfter = account.accessExpiresAt
                outcome.refreshExpiresAfter = account.refreshExpiresAt
                return outcome
            }
            guard account.refreshTokenSealed != nil else {
                throw CLIError.needsReauthorization(account: account.name, reason: "it holds no refresh token")
            }
            let refreshToken = try vault.refreshToken(of: account)
            guard let refreshText = refreshToken.copyToString() else {
                throw CLIError.integrity("the refresh token of '\(account.name)' is not text")
            }
            let before = account
            let response: TokenResponse
            do {
                response = try await retry.run(sleep: context.sleep, onWait: onWait) {
                    try await client.refresh(refreshToken: refreshText)
                }
            } catch let error as OAuthError where error.isInvalidGrant {
                // Final: the account needs a browser. Recorded so that list shows it and no run retries it.
                account.state = .needsReauth
                account.updatedAt = context.now()
                var entry = draft(before, account, outcome: "needs re-authorization (invalid_grant)", event: .refreshFailed)
                entry.detail = error.localizedDescription
                try await store(account, audited: entry)
                outcome.status = .needsReauth
                outcome.error = error.localizedDescription
                outcome.trackingId = error.trackingId
                return outcome
            }
            let now = context.now()
            try TokenStore.apply(response, to: &account, vault: vault, now: now)
            // The new pair is committed (synchronous=FULL) before anything else happens: with a rotating provider
            // the old refresh token may already be dead.
            let changed = response.refreshToken.map { $0 != refreshText } ?? false
            var entry = draft(before, account, outcome: "ok", event: .refreshed)
            entry.refreshTokenChanged = changed
            try await store(account, audited: entry)
            outcome.status = .refreshed
            outcome.accessExpiresAfter = account.accessExpiresAt
            outcome.refreshExpiresAfter = account.refreshExpiresAt
            outcome.refreshTokenChanged = changed
            return outcome
        } catch {
            let report = ErrorReport.describe(error)
            outcome.status = report.code == .needsReauthorization ? .needsReauth : .failed
            outcome.error = report.message
            outcome.hint = report.hint
            outcome.failureCode = report.code
            outcome.trackingId = (error as? OAuthError)?.trackingId
            if error is OAuthError {
                // A failed attempt is part of the account's history too.
                let entry = AuditDraft(
                    at: context.now(), account: planned.name, integration: outcome.integration, event: .refreshFailed,
                    trigger: trigger, outcome: "failed, pair unchanged", accessExpiresBefore: planned.accessExpiresAt,
                    accessExpiresAfter: planned.accessExpiresAt, refreshExpiresBefore: planned.refreshExpiresAt,
                    refreshExpiresAfter: planned.refreshExpiresAt, detail: report.message)
                let vault = vault
                try? await committer.commit { w in try vault.appendAudit(entry, in: w) }
            }
            return outcome
        }
    }

    /// The account's new state and its audit entry, in one durable commit (shared with concurrent refreshes).
    private func store(_ account: Account, audited entry: AuditDraft) async throws {
        let vault = vault
        try await committer.commit { w in
            try w.update(account)
            try vault.appendAudit(entry, in: w)
        }
    }

    private func draft(_ before: Account, _ after: Account, outcome: String, event: AuditEvent) -> AuditDraft {
        AuditDraft(at: context.now(), account: after.name, integration: lock.withLock { integrations[after.integrationId]?.name },
                   event: event, trigger: trigger, outcome: outcome,
                   accessExpiresBefore: before.accessExpiresAt, accessExpiresAfter: after.accessExpiresAt,
                   refreshExpiresBefore: before.refreshExpiresAt, refreshExpiresAfter: after.refreshExpiresAt)
    }
}

extension Provider {
    /// The providers tokenvault knows, by the name stored with an integration.
    static func named(_ name: String) throws -> Provider {
        switch name {
        case Provider.webex.name: return .webex
        default: throw CLIError.usage("the integration uses provider '\(name)', which this tokenvault does not know")
        }
    }
}

extension OAuthClient {
    /// A client for a stored integration, with its client secret opened from the vault.
    static func make(for integration: Integration, vault: UnlockedVault, transport: any HTTPTransport) throws -> OAuthClient {
        guard let base = URL(string: integration.apiBase) else {
            throw CLIError.usage("integration '\(integration.name)' has an invalid API base \(Format.quoted(integration.apiBase))")
        }
        let secret = try vault.clientSecret(of: integration)
        guard let secretText = secret.copyToString() else {
            throw CLIError.integrity("the client secret of integration '\(integration.name)' is not text")
        }
        return OAuthClient(
            provider: try Provider.named(integration.provider),
            credentials: ClientCredentials(clientId: integration.clientId, clientSecret: secretText,
                                           redirectURI: integration.redirectURI, scopes: integration.scopes, apiBase: base),
            transport: transport)
    }
}

/// "10m", "1d", "1d12h", "90s", "2w"; a bare number is seconds.
struct Duration: ExpressibleByArgument, Sendable, Equatable {
    var seconds: TimeInterval

    init(seconds: TimeInterval) { self.seconds = seconds }

    init?(argument: String) {
        if let plain = Double(argument), plain >= 0 { seconds = plain; return }
        var total = 0.0, number = ""
        for ch in argument.lowercased() {
            if ch.isNumber { number.append(ch); continue }
            let unit: Double
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: return nil
            }
            guard let n = Double(number) else { return nil }
            total += n * unit
            number = ""
        }
        guard number.isEmpty, !argument.isEmpty else { return nil }
        seconds = total
    }

    /// How a default shows in --help ("10m", not the struct).
    var defaultValueDescription: String { Format.span(Int(seconds)) }
}
