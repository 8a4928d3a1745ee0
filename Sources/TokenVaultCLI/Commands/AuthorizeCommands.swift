import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension TokenVault {
    struct Authorize: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Get a token pair through the provider's authorization flow (browser, paste or device grant).",
            discussion: """
                Uses a random state and PKCE (S256). When the integration's redirect URI is http on localhost, \
                127.0.0.1 or [::1], tokenvault listens on exactly that host and port for one callback. Otherwise (an \
                https redirect URI, or --no-browser) paste the URL the browser landed on, or just the code. \
                --device uses the device grant: approve on any device with the code shown. \
                Re-authorizing an account replaces its pair (audited).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name (created if new).", completion: .accountNames)
        var account: String

        @Option(help: "The integration to authorize with (default: the account's, or the only one).", completion: .integrationNames)
        var integration: String?

        @Option(help: "Space-separated scopes to request (default: the integration's).")
        var scopes: String?

        @Flag(help: "Do not open a browser or listen: print the URL and ask for the URL the browser landed on.")
        var noBrowser = false

        @Flag(help: "Use the device authorization grant.")
        var device = false

        @Option(help: "Seconds to wait for the browser callback.")
        var timeout: Double = 300

        func validate() throws {
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        }

        func run(_ context: Context) async throws {
            try Names.check(account, what: "account")
            let database = try openDatabase(context)
            let existing = try? database.account(named: account)
            let integration = try chooseIntegration(database, existing: existing)
            if let existing, existing.integrationId != integration.id {
                throw CLIError.usage("account '\(account)' belongs to another integration",
                                     hint: "revoke it first, or authorize under another name")
            }
            let requested = scopes.map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) } ?? integration.scopes
            guard !requested.isEmpty else { throw CLIError.usage("no scopes to request") }
            // The passphrase first: no prompt may interleave with the browser step.
            let vault = try unlock(context)
            let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
            let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)

            let response = device
                ? try await deviceFlow(client, scopes: requested, context: context)
                : try await browserFlow(client, scopes: requested, context: context)

            // Who is this? Recorded as plain metadata; a failure here does not lose the pair.
            var identity: Identity?
            if client.provider.supportsIdentity {
                do {
                    identity = try await client.identity(accessToken: response.accessToken)
                } catch {
                    context.console.err("tokenvault: warning: could not read the account's identity: \(ErrorReport.describe(error).message)\n")
                }
            }
            let now = context.now()
            let before = try? vault.database.account(named: account)
            var record = before ?? Account(name: account, integrationId: integration.id, createdAt: now, updatedAt: now)
            if before != nil {
                // A new pair replaces the old one entirely, refresh token included.
                record.refreshTokenSealed = nil
                record.refreshExpiresAt = nil
                record.grantedScopes = nil
            }
            try TokenStore.apply(response, to: &record, vault: vault, now: now)
            if let identity {
                record.personId = identity.id
                record.email = identity.email
                record.displayName = identity.displayName
                record.orgId = identity.orgId
            }
            // The same account name now acting as another person is worth a loud word: scripts that use the name
            // would send data into someone else's account (a login CSRF looks exactly like this).
            var outcome = before == nil ? "ok" : "ok, replaced the previous pair"
            var detail: String?
            if let before, let previous = before.personId, let identity, identity.id != previous {
                let was = before.email ?? previous, now = identity.email ?? identity.id
                outcome = "ok, replaced the previous pair: another person"
                detail = "was \(previous)\(before.email.map { " <\($0)>" } ?? ""), now \(identity.id)\(identity.email.map { " <\($0)>" } ?? "")"
                context.console.err("tokenvault: warning: '\(account)' belonged to \(ProviderText.displayable(was)) and now belongs to \(ProviderText.displayable(now)), another person; scripts using '\(account)' will act as them\n")
                context.console.err("tokenvault: hint: if that is not what you meant, run 'tokenvault revoke \(account)' and authorize again as the right person\n")
            }
            try vault.database.write { w in
                if before == nil { try w.insert(record) } else { try w.update(record) }
                try vault.appendAudit(AuditDraft(
                    at: now, account: account, integration: integration.name, event: .authorized,
                    trigger: device ? "authorize --device" : "authorize", outcome: outcome,
                    accessExpiresBefore: before?.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                    refreshExpiresBefore: before?.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                    refreshTokenChanged: before == nil ? nil : true, detail: detail), in: w)
            }
            let who = identity.map { " as \($0.email ?? $0.id)\($0.displayName.map { " (\($0))" } ?? "")" } ?? ""
            context.console.err("Authorized '\(account)'\(who): access token valid \(Format.span(response.expiresIn))"
                + (response.refreshTokenExpiresIn.map { ", refresh token \(Format.span($0))" } ?? "") + ".\n")
            if let granted = response.scope {
                let missing = requested.filter { !granted.contains($0) }
                if !missing.isEmpty {
                    let adminNote = missing.contains { $0.hasPrefix("meeting:admin_") }
                        ? " Webex leaves meeting:admin_* scopes out of tokens of users who are not admins." : ""
                    context.console.err("tokenvault: warning: the provider did not grant \(missing.joined(separator: " ")).\(adminNote)\n")
                }
            }
        }

        private func chooseIntegration(_ database: VaultDatabase, existing: Account?) throws -> Integration {
            try IntegrationChoice.resolve(integration, database: database, existing: existing)
        }

        private func browserFlow(_ client: OAuthClient, scopes: [String], context: Context) async throws -> TokenResponse {
            let state = PKCE.newState(random: context.random)
            let pkce = PKCE.generate(random: context.random)
            let url = client.authorizationURL(state: state, pkce: pkce, scopes: scopes)
            let mode = try RedirectMode(redirectURI: client.credentials.redirectURI)
            if case .loopback(let host, let port, let path) = mode, !noBrowser {
                // Bind before the browser opens, so the callback cannot arrive before we listen.
                let listener = LoopbackListener(host: host, port: port)
                try listener.bind()
                defer { listener.close() }
                // The browser's command line is readable by every local user: it gets a single-use address on
                // our own listener, which sends it on to the authorization URL (state and challenge stay off argv).
                let launchPath = "/tokenvault-" + PKCE.newState(random: context.random)
                let hostPart = host.contains(":") ? "[\(host)]" : host
                let launch = URL(string: "http://\(hostPart):\(listener.port)\(launchPath)")!
                context.console.err("Opening the browser to authorize '\(account)'. If it does not open, visit:\n\n  \(url.absoluteString)\n\n")
                if context.openBrowser(launch, context.environment) {
                    context.console.err("Waiting for the callback on \(client.credentials.redirectURI) (up to \(Int(timeout)) s)…\n")
                    let console = context.console
                    let code = try await listener.waitForCallback(
                        expectedState: state, path: path, timeout: timeout,
                        launch: LoopbackListener.Launch(path: launchPath, target: url),
                        onEvent: { event in console.err("tokenvault: warning: \(Self.describe(event))\n") })
                    return try await exchange(code, client: client, pkce: pkce, pasted: false, context: context)
                }
                // Nothing will open the URL for us, so no callback is coming: waiting out the timeout helps no one.
                listener.close()
                context.console.err("tokenvault: no browser could be started ($BROWSER or xdg-open): open the URL above in a browser yourself and approve; the page it lands on may fail to load, that is fine: copy its address.\n")
                return try await pasteCode(client: client, pkce: pkce, state: state, context: context)
            }
            context.console.err("Open this URL in a browser and approve:\n\n  \(url.absoluteString)\n\n")
            var page: BrowserPage?
            defer { page?.remove() }
            if !noBrowser {
                page = openThroughPage(url, context: context)
            }
            return try await pasteCode(client: client, pkce: pkce, state: state, context: context)
        }

        /// How many times a bad paste is answered by asking again: every typo must not cost a new passphrase
        /// prompt and a new consent.
        static let pasteAttempts = 3

        /// Asks for the URL the browser landed on (or the code) and exchanges it; a paste that is wrong, or a code
        /// the provider refuses, is explained and asked for again, up to `pasteAttempts` times.
        private func pasteCode(client: OAuthClient, pkce: PKCE, state: String, context: Context) async throws -> TokenResponse {
            var prompt = "Paste the URL the browser landed on (or just the code): "
            for attempt in 1... {
                guard let pasted = context.readLine(prompt) else {
                    throw OAuthError.invalidPaste("nothing was pasted")
                }
                do {
                    let code = try parsePastedCallback(pasted, expectedState: state)
                    return try await exchange(code, client: client, pkce: pkce, pasted: true, context: context)
                } catch {
                    guard attempt < Self.pasteAttempts, let problem = Self.pasteProblem(error) else { throw error }
                    let left = Self.pasteAttempts - attempt
                    context.console.err("tokenvault: \(problem)\n")
                    prompt = "Paste it again (\(left) more attempt\(left == 1 ? "" : "s")): "
                }
            }
            fatalError("unreachable: the loop returns or throws")
        }

        /// The code exchange, with a refused code named as such (not as a refresh token's problem).
        private func exchange(_ code: String, client: OAuthClient, pkce: PKCE, pasted: Bool, context: Context) async throws -> TokenResponse {
            do {
                // 429 and 5xx are retried while the code is still usable; invalid_grant is final (CodeExchange).
                return try await CodeExchange.run(sleep: context.sleep) { try await client.exchangeCode(code, pkce: pkce) }
            } catch let error as OAuthError where error.isInvalidGrant {
                guard case .oauth(_, let description, _, let trackingId) = error else { throw error }
                let said = [description.map { ProviderText.displayable($0) }, trackingId.map { "trackingId \($0)" }]
                    .compactMap { $0 }.joined(separator: ", ")
                throw CLIError.authorizationCodeRefused(account: account, said: said.isEmpty ? nil : said, pasted: pasted)
            }
        }

        /// What to tell the user before asking for the paste again; nil for failures a new paste cannot fix.
        static func pasteProblem(_ error: any Error) -> String? {
            switch error {
            case OAuthError.invalidPaste(let detail):
                return "\(detail); paste the whole URL from the address bar (it holds code= and state=), or just the code"
            case OAuthError.callbackError(let code, let description):
                let said = description.map { " (\(ProviderText.displayable($0)))" } ?? ""
                return "the URL carries an error from the provider instead of a code: \(ProviderText.displayable(code))\(said); open the URL above again and approve"
            case let refused as CLIError:
                guard case .authorizationCodeRefused = refused else { return nil }
                return "\(refused.localizedDescription); paste the URL of this authorization, right after approving (a code works once, for a few minutes)"
            default:
                return nil
            }
        }

        /// Starts the browser on a private page that sends it to `url`; a page that cannot be written is
        /// a warning (the URL is on the terminal), not a failure.
        private func openThroughPage(_ url: URL, context: Context) -> BrowserPage? {
            do {
                let page = try BrowserPage.write(sendingTo: url, context: context, vaultPath: vaultPath(context))
                if !context.openBrowser(page.url, context.environment) {
                    context.console.err("tokenvault: hint: no browser could be started ($BROWSER or xdg-open); open the URL above yourself.\n")
                }
                return page
            } catch {
                context.console.err("tokenvault: warning: not starting a browser: \(ErrorReport.describe(error).message); open the URL above yourself.\n")
                return nil
            }
        }

        static func describe(_ event: LoopbackListener.Event) -> String {
            switch event {
            case .otherUser(let uid):
                "refused a request to the callback address from \(uid.map { "another local user (uid \($0))" } ?? "a program whose owner could not be found"); still waiting"
            case .wrongState:
                "refused a callback that does not belong to this authorization (wrong or missing state); still waiting"
            case .launchReused:
                "the browser link was opened a second time and refused; if that was not you, someone on this machine tried to follow it"
            }
        }

        private func deviceFlow(_ client: OAuthClient, scopes: [String], context: Context) async throws -> TokenResponse {
            let grant = try await client.startDeviceAuthorization(scopes: scopes)
            context.console.err("To authorize '\(account)', visit \(grant.verificationURI) and enter the code \(grant.userCode)\n")
            var page: BrowserPage?
            defer { page?.remove() }
            if let complete = grant.verificationURIComplete {
                context.console.err("(or open \(complete))\n")
                // The complete URI carries the user code: the browser gets a private page, not the URI on argv.
                if !noBrowser, let url = URL(string: complete) {
                    page = openThroughPage(url, context: context)
                }
            }
            context.console.err("Waiting for approval (polling every \(grant.interval) s)…\n")
            let now = context.now
            return try await client.pollDeviceToken(grant, now: now, sleep: context.sleep)
        }
    }

    struct Exec: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command with the account's access token in its environment.",
            discussion: """
                tokenvault replaces itself with the command (like a shell's exec): stdin, stdout, stderr, signals and
                the exit status are the command's own. The token is passed only in the environment, never on argv.
                Example: tokenvault exec alice -- python3 report.py --since yesterday
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: Duration = Duration(seconds: 600)

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
        var command: [String] = []

        func run(_ context: Context) async throws {
            var command = command
            if command.first == "--" { command.removeFirst() }
            guard let program = command.first else {
                throw CLIError.usage("no command to run", hint: "tokenvault exec \(account) -- COMMAND [ARGS…]")
            }
            let (token, integration) = try await freshAccessToken(account: account, global: global, minValid: minValid.seconds,
                                                                  trigger: "exec", context: context)
            // The vault's passphrase, in any form, is not the child's.
            var environment = ChildEnvironment.scrubbed(context.environment)
            environment[integration.envVar] = token
            let status = try context.execute(program, Array(command.dropFirst()), environment)
            throw CommandExit(code: ExitCode(rawValue: status) ?? .other, raw: status)
        }
    }

    struct Whoami: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the provider who the account's token belongs to (refreshed first if needed).")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: Duration = Duration(seconds: 600)

        @Flag(help: "Print JSON.")
        var json = false

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        func run(_ context: Context) async throws {
            let (token, integration, vault) = try await freshAccessTokenAndVault(
                account: account, global: global, minValid: minValid.seconds, trigger: "whoami", context: context)
            let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
            let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
            let identity: Identity
            do {
                identity = try await client.identity(accessToken: token)
            } catch let error as OAuthError where error.isUnauthorized {
                // The provider refused a token that looked valid (revoked, or its expiry was wrong): refresh once,
                // whatever the expiry says, and ask again.
                let retried = try await refreshAfterRejection(vault: vault, rejected: error, context: context)
                do {
                    identity = try await client.identity(accessToken: retried)
                } catch let again as OAuthError where again.isUnauthorized {
                    try await markNeedsReauthorization(vault: vault, integration: integration.name, because: again, context: context)
                    throw CLIError.needsReauthorization(account: account, reason: "the provider refused its access token even after a refresh (HTTP 401)")
                }
            }
            // Keep the plain identity metadata current; this is not a lifetime change, so no audit entry.
            var record = try vault.database.account(named: account)
            record.personId = identity.id
            record.email = identity.email
            record.displayName = identity.displayName
            record.orgId = identity.orgId
            try vault.database.write { try $0.update(record) }
            if json {
                var o: [String: Any] = ["account": account, "id": identity.id]
                o["email"] = identity.email
                o["display_name"] = identity.displayName
                o["org_id"] = identity.orgId
                o["type"] = identity.type
                context.console.out(Format.json(o) + "\n")
            } else {
                context.console.out("\(identity.displayName ?? "-") <\(identity.email ?? "-")>\n  id: \(identity.id)\n  org: \(identity.orgId ?? "-")\n  type: \(identity.type ?? "-")\n")
            }
        }
    }
}

/// The authorization-code exchange, retried on 429 (Retry-After honoured) and 5xx or a lost connection while the
/// code is still usable: a code lives a minute or two, so the waits together stay under `budget`. invalid_grant
/// (and every other 4xx) is final, as in `RetryPolicy`.
enum CodeExchange {
    static let policy = RetryPolicy(maxAttempts: 4, base: 1, cap: 8, maxRetryAfter: 30)
    /// Seconds of waiting, all retries together.
    static let budget: Double = 60

    static func run<T>(sleep: @Sendable (Double) async throws -> Void, _ op: () async throws -> T) async throws -> T {
        var attempt = 0
        var waited = 0.0
        while true {
            attempt += 1
            do {
                return try await op()
            } catch {
                guard let wait = policy.delay(forAttempt: attempt, error: error), waited + wait <= budget else { throw error }
                waited += wait
                try await sleep(wait)
            }
        }
    }
}

/// Which integration a command means: the one named, else the account's, else the only one there is.
enum IntegrationChoice {
    static func resolve(_ name: String?, database: VaultDatabase, existing: Account? = nil) throws -> Integration {
        if let name { return try database.integration(named: name) }
        if let existing, let owner = try database.integration(id: existing.integrationId) { return owner }
        let all = try database.integrations()
        if all.count == 1 { return all[0] }
        if all.isEmpty {
            throw CLIError.usage("no integration is registered", hint: "register one with 'tokenvault integration add NAME …'")
        }
        let names = all.map(\.name).sorted()
        throw CLIError.usage("several integrations are registered (\(names.joined(separator: ", "))); say which one",
                             hint: "pass --integration \(names.joined(separator: "|"))")
    }
}

extension OAuthError {
    /// The provider refused the access token itself (HTTP 401).
    var isUnauthorized: Bool {
        if case .api(401, _, _) = self { return true }
        return false
    }
}

extension TokenVault.Whoami {
    /// After a 401: refreshes the account once (unless another process just did) and returns the token to retry
    /// with. An account that cannot be refreshed is marked needs-reauth at once.
    func refreshAfterRejection(vault: UnlockedVault, rejected: OAuthError, context: Context) async throws -> String {
        let planned = try vault.database.account(named: account)
        let integrationName = try vault.database.integration(id: planned.integrationId)?.name
        guard planned.refreshTokenSealed != nil, planned.state == .ok else {
            try await markNeedsReauthorization(vault: vault, integration: integrationName, because: rejected, context: context)
            throw CLIError.needsReauthorization(account: account, reason: "the provider refused its access token (HTTP 401) and it holds no refresh token")
        }
        try AccountLock.checkDirectory(vaultPath: vault.database.path)
        let refresher = Refresher(vault: vault, services: context.services, trigger: "whoami", verbose: global.verbose)
        let outcome = await refresher.refresh(planned) { $0.updatedAt == planned.updatedAt }
        switch outcome.status {
        case .refreshed, .alreadyFresh:
            if let warning = outcome.lapseWarning(now: context.now()) { context.console.err("tokenvault: warning: \(warning)\n") }
            let fresh = try vault.database.account(named: account)
            guard let text = try vault.accessToken(of: fresh).copyToString() else {
                throw CLIError.integrity("the access token of '\(account)' is not text")
            }
            return text
        case .needsReauth, .noRefresh:
            throw CLIError.needsReauthorization(account: account, reason: outcome.error ?? "the provider refused its refresh token")
        case .failed:
            if outcome.failureCode == .integrity {
                throw CLIError.integrity(outcome.error ?? "integrity failure", hint: "the vault was damaged or tampered with; restore it from a backup or authorize again")
            }
            throw CLIError.provider("the provider refused the access token of '\(account)' (HTTP 401) and refreshing it failed: \(outcome.error ?? "unknown error")",
                                    hint: "try again later; if it persists, run 'tokenvault authorize \(account)'")
        }
    }

    /// Records that the provider refuses the account's tokens: list shows needs-reauth and no run retries it.
    func markNeedsReauthorization(vault: UnlockedVault, integration: String?, because error: OAuthError, context: Context) async throws {
        var record = try vault.database.account(named: account)
        let before = record
        record.state = .needsReauth
        record.updatedAt = context.now()
        try vault.database.write { w in
            try w.update(record)
            try vault.appendAudit(AuditDraft(
                at: context.now(), account: account, integration: integration, event: .accessTokenRejected, trigger: "whoami",
                outcome: "needs re-authorization (the provider refused the access token)",
                accessExpiresBefore: before.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                refreshExpiresBefore: before.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                detail: error.localizedDescription), in: w)
        }
    }
}

/// The access token to hand out, refreshed first when it lapses within `minValid`; never an expired one
/// (`TokenService`).
func freshAccessToken(account: String, global: GlobalOptions, minValid: TimeInterval, trigger: String,
                      context: Context) async throws -> (String, Integration) {
    let (token, integration, _) = try await freshAccessTokenAndVault(account: account, global: global, minValid: minValid,
                                                                     trigger: trigger, context: context)
    return (token, integration)
}

func freshAccessTokenAndVault(account name: String, global: GlobalOptions, minValid: TimeInterval, trigger: String,
                              context: Context) async throws -> (String, Integration, UnlockedVault) {
    let database = try VaultDatabase.open(at: VaultLocation.path(option: global.vault, context: context))
    let account = try database.account(named: name)
    guard let integration = try database.integration(id: account.integrationId) else { throw StoreError.noSuchIntegration(account.integrationId) }
    let vault = try UnlockedVault.unlock(database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context), context: context)
    let text = try await TokenService(vault: vault, services: context.services, verbose: global.verbose)
        .freshAccessToken(account: account, integration: integration, minValid: minValid, trigger: trigger)
    // exec replaces this process and never reaches the end of TokenVault.run: report a failed mlock here.
    MemoryLockReport.print(context: context, verbose: global.verbose)
    return (text, integration, vault)
}
