import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth

extension TokenVault {
    struct Authorize: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "authorize",
            abstract: "Get a token pair through the provider's authorization flow (browser, paste or device grant).",
            discussion: """
                Uses a random state and PKCE (S256). When the integration's redirect URI is http on localhost, \
                127.0.0.1 or [::1], tokenvault listens on exactly that host and port for one callback. Otherwise (an \
                https redirect URI, or --no-browser) paste the URL the browser landed on, or just the code. \
                --device uses the device grant: approve on any device with the code shown. \
                Re-authorizing an account replaces its pair (audited; a pair of another person is warned about).

                The browser is $BROWSER (commands separated by ':', %s for the URL), else xdg-open when there is a \
                display; the URL is always printed too. The browser's command line never carries the authorization \
                URL: it gets a single-use loopback address or a private file:// page. Only a callback with the right \
                state, from a program of your own user, ends the wait; others are refused and the wait goes on. \
                When no browser can be started it switches to paste mode at once. A wrong paste is asked for \
                again, three tries in all (then exit 2). With several integrations, --integration is needed.

                Examples:
                  tokenvault authorize alice
                  tokenvault authorize alice --no-browser
                  tokenvault authorize bob --integration m365 --device
                  tokenvault authorize carol --integration gmail --scopes "openid email" --timeout 2m
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name (created if new).", completion: .accountNames)
        var account: String

        @Option(
            help: "The integration to authorize with (default: the account's, or the only one).",
            completion: .integrationNames)
        var integration: String?

        @Option(help: "Space-separated scopes to request (default: the integration's).")
        var scopes: String?

        @Flag(help: "Do not open a browser or listen: print the URL and ask for the URL the browser landed on.")
        var noBrowser = false

        @Flag(help: "Use the device authorization grant.")
        var device = false

        @Option(
            name: .customLong("timeout"),
            help: ArgumentHelp(
                "How long to wait for the browser callback (90s, 5m; a bare number is seconds).", valueName: "duration")
        )
        var timeoutOption = DurationArgument(seconds: 300)

        var timeout: Double { timeoutOption.seconds }

        func validate() throws {
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        }

        func run(_ context: Context) async throws {
            try Names.check(account, what: "account")
            let database = try openDatabase(context)
            let existing = try? database.account(named: account)
            let integration = try IntegrationChoice.resolve(self.integration, database: database, existing: existing)
            if let existing, existing.integrationId != integration.id {
                throw CLIError.usage(
                    "account '\(account)' belongs to another integration",
                    hint: "revoke it first, or authorize under another name")
            }
            let requested =
                scopes.map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
                ?? integration.scopes
            // A GitHub App takes no scopes (its permissions are set on the app): only a provider that needs scopes
            // refuses an authorization without any.
            guard try !requested.isEmpty || !Provider.of(integration).scopesRequired else {
                throw CLIError.usage("no scopes to request")
            }
            // The passphrase first: no prompt may interleave with the browser step.
            let vault = try unlock(context)
            let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
            let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)

            let response =
                device
                ? try await deviceFlow(client, scopes: requested, context: context)
                : try await browserFlow(client, scopes: requested, context: context)

            // Who is this? Recorded as plain metadata; a failure here does not lose the pair.
            var identity: Identity?
            if client.provider.supportsIdentity {
                do {
                    identity = try await client.identity(accessToken: response.accessToken)
                } catch {
                    context.console.warn(
                        "could not read the account's identity: \(ErrorReport.describe(error).message)")
                }
            }
            let stored = try vault.storeAuthorizedPair(
                response, account: account, integration: integration, identity: identity,
                trigger: device ? .authorizeDevice : .authorize, now: context.now())
            // The same account name now acting as another person is worth a loud word: scripts that use the name
            // would send data into someone else's account (a login CSRF looks exactly like this).
            if let change = stored.personChange {
                context.console.warn(
                    "'\(account)' belonged to \(ProviderText.displayable(change.previous)) and now belongs to \(ProviderText.displayable(change.current)), another person; scripts using '\(account)' will act as them"
                )
                context.console.err(
                    "tokenvault: hint: if that is not what you meant, run \(Format.command("tokenvault revoke \(account)")) and authorize again as the right person\n"
                )
            }
            let who = identity.map { " as \($0.email ?? $0.id)\($0.displayName.map { " (\($0))" } ?? "")" } ?? ""
            context.console.err(
                "Authorized '\(account)'\(who): access token valid \(Format.span(response.expiresIn))"
                    + (response.refreshTokenExpiresIn.map { ", refresh token \(Format.span($0))" } ?? "") + ".\n")
            if let granted = response.scope {
                let missing = requested.filter { !granted.contains($0) }
                if !missing.isEmpty {
                    let adminNote = client.provider.hints.note(missing: missing).map { " " + $0 } ?? ""
                    context.console.warn("the provider did not grant \(missing.joined(separator: " ")).\(adminNote)")
                }
            }
        }

        private func browserFlow(_ client: OAuthClient, scopes: [String], context: Context) async throws
            -> TokenResponse
        {
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
                context.console.err(
                    "Opening the browser to authorize '\(account)'. If it does not open, visit:\n\n  \(url.absoluteString)\n\n"
                )
                if context.openBrowser(launch, context.environment) {
                    context.console.err(
                        "Waiting for the callback on \(client.credentials.redirectURI) (up to \(Int(timeout)) s)…\n")
                    let console = context.console
                    let code = try await listener.waitForCallback(
                        expectedState: state, path: path, timeout: timeout,
                        launch: LoopbackListener.Launch(path: launchPath, target: url),
                        onEvent: { event in console.warn("\(Self.describe(event))") })
                    return try await exchange(code, client: client, pkce: pkce, pasted: false, context: context)
                }
                // Nothing will open the URL for us, so no callback is coming: waiting out the timeout helps no one.
                listener.close()
                context.console.err(
                    "tokenvault: no browser could be started (\(Self.browserAttempts(context.environment))): open the URL above in a browser yourself and approve; the page it lands on may fail to load, that is fine: copy its address.\n"
                )
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

        /// What was tried to open a browser, for the message that says none opened.
        static func browserAttempts(_ environment: [String: String]) -> String {
            let browser =
                (environment["BROWSER"] ?? "").isEmpty
                ? "$BROWSER is not set" : "every entry of $BROWSER failed or exited non-zero"
            return browser
                + (Browser.hasDisplay(environment)
                    ? ", and so did xdg-open"
                    : "; no display for xdg-open ($DISPLAY and $WAYLAND_DISPLAY are not set: an ssh session?)")
        }

        /// How many times a bad paste is answered by asking again: every typo must not cost a new passphrase
        /// prompt and a new consent.
        static let pasteAttempts = 3

        /// Asks for the URL the browser landed on (or the code) and exchanges it; a paste that is wrong, or a code
        /// the provider refuses, is explained and asked for again, up to `pasteAttempts` times.
        private func pasteCode(client: OAuthClient, pkce: PKCE, state: String, context: Context) async throws
            -> TokenResponse
        {
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
        private func exchange(_ code: String, client: OAuthClient, pkce: PKCE, pasted: Bool, context: Context)
            async throws -> TokenResponse
        {
            do {
                // 429 and 5xx are retried while the code is still usable; invalid_grant is final (CodeExchange).
                return try await CodeExchange.run(sleep: context.sleep) {
                    try await client.exchangeCode(code, pkce: pkce)
                }
            } catch let error as OAuthError where error.isInvalidGrant {
                guard case .oauth(_, let description, _, let trackingId) = error else { throw error }
                let said = [description.map { ProviderText.displayable($0) }, trackingId.map { "trackingId \($0)" }]
                    .compactMap { $0 }.joined(separator: ", ")
                throw CLIError.authorizationCodeRefused(
                    account: account, said: said.isEmpty ? nil : said, pasted: pasted)
            }
        }

        /// What to tell the user before asking for the paste again; nil for failures a new paste cannot fix.
        static func pasteProblem(_ error: any Error) -> String? {
            switch error {
            case OAuthError.invalidPaste(let detail):
                return
                    "\(detail); paste the whole URL from the address bar (it holds code= and state=), or just the code"
            case OAuthError.callbackError(let code, let description):
                let said = description.map { " (\(ProviderText.displayable($0)))" } ?? ""
                return
                    "the URL carries an error from the provider instead of a code: \(ProviderText.displayable(code))\(said); open the URL above again and approve"
            case let refused as CLIError:
                guard case .authorizationCodeRefused = refused else { return nil }
                return
                    "\(refused.localizedDescription); paste the URL of this authorization, right after approving (a code works once, for a few minutes)"
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
                    context.console.err(
                        "tokenvault: hint: no browser could be started (\(Self.browserAttempts(context.environment))); open the URL above yourself.\n"
                    )
                }
                return page
            } catch {
                context.console.warn(
                    "not starting a browser: \(ErrorReport.describe(error).message); open the URL above yourself.")
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

        private func deviceFlow(_ client: OAuthClient, scopes: [String], context: Context) async throws -> TokenResponse
        {
            let grant = try await client.startDeviceAuthorization(scopes: scopes)
            context.console.err(
                "To authorize '\(account)', visit \(grant.verificationURI) and enter the code \(grant.userCode)\n")
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
                guard let wait = policy.delay(forAttempt: attempt, error: error), waited + wait <= budget else {
                    throw error
                }
                waited += wait
                try await sleep(wait)
            }
        }
    }
}
