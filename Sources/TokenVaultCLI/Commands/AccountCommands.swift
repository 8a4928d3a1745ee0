import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension EnvExport.Style: ExpressibleByArgument {}

/// How usable an account's token pair is, as `list` shows it.
enum DisplayState: String {
    case ok, expiring, expired
    case needsReauth = "needs-reauth"
    /// Stored later than now (`ClockAhead`): its expiry times cannot be trusted; the next use or refresh-all refreshes it.
    case stale
    /// A valid access token and no refresh token (imported that way): usable until it lapses, then `needs-reauth`.
    /// refresh-all leaves it alone.
    case noRefresh = "no-refresh"

    /// An access token within a day of lapsing, or a refresh token within 14 days, is "expiring".
    static let accessWarning: TimeInterval = 86_400
    static let refreshWarning: TimeInterval = 14 * 86_400

    init(_ account: Account, now: Date) {
        self.init(state: account.state, hasAccessToken: account.accessTokenSealed != nil,
                  hasRefreshToken: account.refreshTokenSealed != nil,
                  access: account.accessExpiresAt, refresh: account.refreshExpiresAt, updatedAt: account.updatedAt, now: now)
    }

    init(_ summary: AccountSummary, now: Date) {
        self.init(state: summary.state, hasAccessToken: summary.hasAccessToken, hasRefreshToken: summary.hasRefreshToken,
                  access: summary.accessExpiresAt, refresh: summary.refreshExpiresAt, updatedAt: summary.updatedAt, now: now)
    }

    init(state: AccountState, hasAccessToken: Bool, hasRefreshToken: Bool, access: Date?, refresh: Date?, updatedAt: Date, now: Date) {
        if state == .needsReauth || !(hasAccessToken || hasRefreshToken) {
            self = .needsReauth
        } else if ClockAhead.isAhead(updatedAt: updatedAt, now: now) {
            self = .stale
        } else if !hasRefreshToken {
            // Nothing can renew it: usable while its access token lasts, then only authorize or import helps.
            self = (access.map { $0 > now } ?? false) ? .noRefresh : .needsReauth
        } else if let refresh, refresh <= now {
            self = (access.map { $0 > now } ?? false) ? .expiring : .needsReauth
        } else if let access, access <= now {
            self = .expired
        } else if let access, access.timeIntervalSince(now) < Self.accessWarning {
            self = .expiring
        } else if let refresh, refresh.timeIntervalSince(now) < Self.refreshWarning {
            self = .expiring
        } else {
            self = .ok
        }
    }
}

extension TokenVault {
    struct Import: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store token pairs obtained elsewhere (a Webex token response JSON on standard input).",
            discussion: """
                Reads {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type"} from \
                standard input; expiries are now + the lifetimes. With --batch, reads JSON Lines instead, one object \
                per account with an extra "account" field; every line is checked before anything is stored, and all \
                are stored in one transaction with one passphrase prompt. Examples:
                  tokenvault import alice --integration reporting < token.json
                  tokenvault import --batch --integration reporting < pairs.jsonl
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name (omit with --batch).", completion: .accountNames)
        var account: String?

        @Option(help: "The integration the tokens were issued to (default: the account's, or the only one).", completion: .integrationNames)
        var integration: String?

        @Flag(help: "Replace the token pair of an existing account.")
        var replace = false

        @Flag(help: "Read JSON Lines with an \"account\" field per line.")
        var batch = false

        func validate() throws {
            if batch && account != nil { throw ValidationError("give either an account name or --batch, not both") }
            if !batch && account == nil { throw ValidationError("missing the account name (or --batch)") }
        }

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let integration = try IntegrationChoice.resolve(
                integration, database: database, existing: batch ? nil : account.flatMap { try? database.account(named: $0) })
            // Read and check all input before asking for the passphrase: a typo costs no KDF run.
            let input = try context.readStandardInput()
            let pairs = try batch ? Self.parseBatch(input) : [(account!, try Self.parse(input, account: account!, integration: integration.name))]
            var existing: [String: Account] = [:]
            for account in try database.accounts() { existing[account.name] = account }
            for (name, _) in pairs {
                try Names.check(name, what: "account")
                if let old = existing[name] {
                    if !replace { throw StoreError.duplicateAccount(name) }
                    if old.integrationId != integration.id {
                        throw CLIError.usage("account '\(name)' belongs to another integration",
                                             hint: "revoke it first, or import under another name")
                    }
                }
            }
            let vault = try unlock(context)
            let now = context.now()
            try vault.database.write { w in
                for (name, response) in pairs {
                    let before = existing[name]
                    var record = before ?? Account(name: name, integrationId: integration.id, createdAt: now, updatedAt: now)
                    try TokenStore.apply(response, to: &record, vault: vault, now: now)
                    if before == nil { try w.insert(record) } else { try w.update(record) }
                    try vault.appendAudit(AuditDraft(
                        at: now, account: name, integration: integration.name, event: .imported, trigger: "import",
                        outcome: "ok", accessExpiresBefore: before?.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                        refreshExpiresBefore: before?.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                        refreshTokenChanged: before == nil ? nil : response.refreshToken != nil), in: w)
                }
            }
            if batch {
                context.console.err("Imported \(pairs.count) token pair\(pairs.count == 1 ? "" : "s") into integration '\(integration.name)'.\n")
            } else if let response = pairs.first?.1 {
                context.console.err("Imported a token pair for '\(pairs[0].0)': access token valid \(Format.span(response.expiresIn))"
                    + (response.refreshTokenExpiresIn.map { ", refresh token \(Format.span($0))" } ?? "") + ".\n")
            }
        }

        static func parse(_ data: Data, account: String, integration: String) throws -> TokenResponse {
            do {
                return try TokenResponse.parse(data)
            } catch let e as OAuthError where e.isTokenCharacterRefusal {
                throw CLIError.provider(e.localizedDescription, hint: "a bearer token has only letters, digits, - . _ ~ + / and trailing =; check what was pasted")
            } catch {
                throw CLIError.usage(error.localizedDescription,
                                     hint: "pipe in the JSON the token endpoint returned, e.g. tokenvault import \(account) --integration \(integration) < token.json")
            }
        }

        static func parseBatch(_ data: Data) throws -> [(String, TokenResponse)] {
            var pairs: [(String, TokenResponse)] = []
            var seen = Set<String>()
            for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
                let lineData = Data(line)
                if lineData.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let where_ = "line \(index + 1)"
                guard let object = try? JSONSerialization.jsonObject(with: lineData) as? [String: Any],
                      let name = object["account"] as? String else {
                    throw CLIError.usage("\(where_): expected a JSON object with an \"account\" field",
                                         hint: "one object per line: {\"account\": \"alice\", \"access_token\": …, \"expires_in\": …}")
                }
                do {
                    pairs.append((name, try TokenResponse.parse(lineData)))
                } catch let e as OAuthError where e.isTokenCharacterRefusal {
                    throw CLIError.provider("\(where_) (account \(Format.quoted(name))): \(e.localizedDescription)")
                } catch {
                    throw CLIError.usage("\(where_) (account \(Format.quoted(name))): \(error.localizedDescription)")
                }
                guard seen.insert(name).inserted else { throw CLIError.usage("\(where_): account \(Format.quoted(name)) appears twice") }
            }
            guard !pairs.isEmpty else { throw CLIError.usage("no token pairs on standard input") }
            return pairs
        }
    }

    struct List: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every account and how long its tokens last (no passphrase needed).",
            aliases: ["status"])

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            let database = try openDatabase(context)
            let integrations = Dictionary(uniqueKeysWithValues: try database.integrations().map { ($0.id, $0.name) })
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
            var rows = [["ACCOUNT", "INTEGRATION", "IDENTITY", "ACCESS EXPIRES IN", "REFRESH EXPIRES IN", "STATE"]]
            for a in accounts {
                rows.append([
                    // Stored provider text (an older vault, or an edited file) is cleaned again where a person reads it.
                    a.name, integrations[a.integrationId] ?? "?", a.email.map { ProviderText.displayable($0, limit: 80) } ?? "-",
                    Format.remaining(a.accessExpiresAt, now: now), Format.remaining(a.refreshExpiresAt, now: now),
                    DisplayState(a, now: now).rawValue,
                ])
            }
            context.console.out(Table.render(rows))
        }
    }

    struct Env: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the account's access token as a shell export: eval \"$(tokenvault env alice)\".",
            aliases: ["export-env"])

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Option(help: "Output format: sh (bash, dash, zsh), fish, dotenv (NAME=value, unquoted; token characters only) or json.")
        var format: EnvExport.Style = .sh

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: Duration = Duration(seconds: 600)

        func run(_ context: Context) async throws {
            let (token, integration) = try await freshAccessToken(account: account, global: global, minValid: minValid.seconds,
                                                                  trigger: "env", context: context)
            context.console.out(try EnvExport.render([(integration.envVar, token)], format: format))
        }
    }

    struct Token: VaultCommand {
        static let configuration = CommandConfiguration(abstract: "Print the account's bare access token.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Option(help: ArgumentHelp("Refresh first when the access token lapses within this.", valueName: "duration"))
        var minValid: Duration = Duration(seconds: 600)

        func run(_ context: Context) async throws {
            let (token, _) = try await freshAccessToken(account: account, global: global, minValid: minValid.seconds,
                                                        trigger: "token", context: context)
            guard !token.contains(where: \.isNewline) else {
                throw CLIError.integrity("the access token of '\(account)' contains a line break; refusing to print it")
            }
            context.console.out(token + "\n")
        }
    }

    struct Revoke: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an account's tokens at the provider, then delete the pair from the vault (audited).",
            discussion: """
                Webex: when the token may do it (scope identity:tokens_write, or unknown scopes), tokenvault calls \
                DELETE /authorizations?clientId=…; otherwise, or with --local, it only deletes the local pair and \
                says how to revoke at Webex. The sealed bytes are removed from both the database file and its \
                write-ahead log.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @Flag(help: "Only remove the local pair; do not contact the provider.")
        var local = false

        func run(_ context: Context) async throws {
            let vault = try unlock(context)
            let record = try vault.database.account(named: account)
            let integration = try vault.database.integration(id: record.integrationId)
            var outcome = "removed locally"
            var remoteNote: String?
            var revocationFailed = false
            if !local, let integration {
                let provider = try Provider.named(integration.provider)
                if !provider.supportsRevoke {
                    remoteNote = "\(provider.name) has no revocation endpoint configured"
                } else if !provider.canRevoke(grantedScopes: record.grantedScopes) {
                    remoteNote = "the token lacks the \(provider.revokeScope ?? "revocation") scope"
                } else if (record.accessExpiresAt ?? .distantPast) <= context.now() {
                    remoteNote = "its access token has expired"
                } else {
                    do {
                        let transport = context.makeTransport(global.verbose ? Trace.tracer(context.console) : nil)
                        let client = try OAuthClient.make(for: integration, vault: vault, transport: transport)
                        let access = try vault.accessToken(of: record).copyToString() ?? ""
                        let refresh = try? vault.refreshToken(of: record).copyToString()
                        try await client.revoke(accessToken: access, refreshToken: refresh ?? nil)
                        outcome = "revoked at \(provider.name) and removed locally"
                    } catch {
                        remoteNote = ErrorReport.describe(error).message
                        outcome = "removed locally; revoking at the provider failed"
                        revocationFailed = true
                    }
                }
            }
            try vault.database.write { w in
                try w.deleteAccount(id: record.id)
                try vault.appendAudit(AuditDraft(
                    at: context.now(), account: account, integration: integration?.name, event: .revoked,
                    trigger: local ? "revoke --local" : "revoke", outcome: outcome,
                    accessExpiresBefore: record.accessExpiresAt, refreshExpiresBefore: record.refreshExpiresAt,
                    detail: remoteNote), in: w)
            }
            try vault.database.purgeDeletedData()
            if outcome.hasPrefix("revoked") {
                context.console.err("Revoked the tokens of '\(account)' at the provider and removed the pair from the vault.\n")
            } else {
                context.console.err("Removed the token pair of '\(account)' from the vault.\n")
                // The provider was asked and said no (or could not be reached): a script must see that the tokens
                // are still good at the provider.
                if revocationFailed {
                    throw CLIError.revokeFailed(account: account, reason: remoteNote ?? "unknown reason")
                }
                if !local {
                    context.console.err("tokenvault: warning: not revoked at the provider (\(remoteNote ?? "unknown reason")): the tokens stay valid until they expire.\n")
                }
                context.console.err("tokenvault: hint: to revoke at Webex, remove the integration's access on your Webex identity profile page, or have an admin revoke it (DELETE /v1/authorizations).\n")
            }
        }
    }
}
