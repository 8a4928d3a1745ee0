import ArgumentParser
import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore

extension EnvExport.Style: ExpressibleByArgument {}

/// How usable an account's token pair is, as `list` shows it.
enum DisplayState: String {
    case ok, expiring, expired
    case needsReauth = "needs-reauth"

    /// An access token within a day of lapsing, or a refresh token within 14 days, is "expiring".
    static let accessWarning: TimeInterval = 86_400
    static let refreshWarning: TimeInterval = 14 * 86_400

    init(_ account: Account, now: Date) {
        if account.state == .needsReauth || account.refreshTokenSealed == nil && account.accessTokenSealed == nil {
            self = .needsReauth
        } else if let refresh = account.refreshExpiresAt, refresh <= now {
            self = (account.accessExpiresAt.map { $0 > now } ?? false) ? .expiring : .needsReauth
        } else if let access = account.accessExpiresAt, access <= now {
            self = .expired
        } else if let access = account.accessExpiresAt, access.timeIntervalSince(now) < Self.accessWarning {
            self = .expiring
        } else if let refresh = account.refreshExpiresAt, refresh.timeIntervalSince(now) < Self.refreshWarning {
            self = .expiring
        } else {
            self = .ok
        }
    }
}

extension TokenVault {
    struct Import: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a token pair obtained elsewhere (a Webex token response JSON on standard input).",
            discussion: """
                Reads {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type"} from
                standard input; expiries are now + the lifetimes. Example:
                  tokenvault import alice --integration reporting < token.json
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.")
        var account: String

        @Option(help: "The integration the tokens were issued to.")
        var integration: String

        @Flag(help: "Replace the token pair of an existing account.")
        var replace = false

        func run(_ context: Context) async throws {
            try Names.check(account, what: "account")
            let database = try openDatabase(context)
            let integration = try database.integration(named: integration)
            let existing = try? database.account(named: account)
            if existing != nil && !replace { throw StoreError.duplicateAccount(account) }
            if let existing, existing.integrationId != integration.id {
                throw CLIError.usage("account '\(account)' belongs to another integration",
                                     hint: "revoke it first, or import under another name")
            }
            // Read and check the JSON before asking for the passphrase: a typo costs no KDF run.
            let input = try context.readStandardInput()
            let response: TokenResponse
            do {
                response = try TokenResponse.parse(input)
            } catch {
                throw CLIError.usage(error.localizedDescription,
                                     hint: "pipe in the JSON the token endpoint returned, e.g. tokenvault import \(account) --integration \(integration.name) < token.json")
            }
            let vault = try unlock(context)
            let now = context.now()
            var record = existing ?? Account(name: account, integrationId: integration.id, createdAt: now, updatedAt: now)
            let before = existing
            record.accessTokenSealed = try vault.seal(response.accessToken, label: SealLabel.accessToken(record))
            record.accessExpiresAt = now.addingTimeInterval(TimeInterval(response.expiresIn))
            if let refresh = response.refreshToken {
                record.refreshTokenSealed = try vault.seal(refresh, label: SealLabel.refreshToken(record))
                record.refreshExpiresAt = response.refreshTokenExpiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
            }
            record.grantedScopes = response.scope
            record.state = .ok
            record.updatedAt = now
            try vault.database.write { w in
                if before == nil { try w.insert(record) } else { try w.update(record) }
                try vault.appendAudit(AuditDraft(
                    at: now, account: account, integration: integration.name, event: .imported, trigger: "import",
                    outcome: "ok", accessExpiresBefore: before?.accessExpiresAt, accessExpiresAfter: record.accessExpiresAt,
                    refreshExpiresBefore: before?.refreshExpiresAt, refreshExpiresAfter: record.refreshExpiresAt,
                    refreshTokenChanged: before == nil ? nil : response.refreshToken != nil), in: w)
            }
            context.console.err("Imported a token pair for '\(account)': access token valid \(Format.span(response.expiresIn))"
                + (response.refreshTokenExpiresIn.map { ", refresh token \(Format.span($0))" } ?? "") + ".\n")
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
            let accounts = try database.accounts()
            let now = context.now()
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
                    a.name, integrations[a.integrationId] ?? "?", a.email ?? "-",
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

        @Argument(help: "The account name.")
        var account: String

        @Option(help: "Output format: sh (bash, dash, zsh), fish, dotenv or json.")
        var format: EnvExport.Style = .sh

        func run(_ context: Context) async throws {
            let (token, integration) = try currentAccessToken(account: account, global: global, context: context)
            context.console.out(try EnvExport.render([(integration.envVar, token)], format: format))
        }
    }

    struct Token: VaultCommand {
        static let configuration = CommandConfiguration(abstract: "Print the account's bare access token.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.")
        var account: String

        func run(_ context: Context) async throws {
            let (token, _) = try currentAccessToken(account: account, global: global, context: context)
            guard !token.contains(where: \.isNewline) else {
                throw CLIError.integrity("the access token of '\(account)' contains a line break; refusing to print it")
            }
            context.console.out(token + "\n")
        }
    }

    struct Revoke: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an account's token pair from the vault (audited).",
            discussion: "The sealed bytes are removed from both the database file and its write-ahead log.")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.")
        var account: String

        @Flag(help: "Only remove the local pair; do not contact the provider.")
        var local = false

        func run(_ context: Context) async throws {
            let vault = try unlock(context)
            let record = try vault.database.account(named: account)
            let integration = try vault.database.integration(id: record.integrationId)
            try vault.database.write { w in
                try w.deleteAccount(id: record.id)
                try vault.appendAudit(AuditDraft(
                    at: context.now(), account: account, integration: integration?.name, event: .revoked,
                    trigger: "revoke", outcome: "removed locally",
                    accessExpiresBefore: record.accessExpiresAt, refreshExpiresBefore: record.refreshExpiresAt), in: w)
            }
            try vault.database.purgeDeletedData()
            context.console.err("Removed the token pair of '\(account)' from the vault.\n")
            if !local {
                context.console.err("The tokens are still valid at the provider until they expire: revoke the app's access on your Webex identity profile page, or have an admin revoke it.\n")
            }
        }
    }
}

/// The access token to hand out, refusing an expired one rather than printing it silently.
func currentAccessToken(account name: String, global: GlobalOptions, context: Context) throws -> (String, Integration) {
    let database = try VaultDatabase.open(at: VaultLocation.path(option: global.vault, context: context))
    let account = try database.account(named: name)
    guard let integration = try database.integration(id: account.integrationId) else { throw StoreError.noSuchIntegration(account.integrationId) }
    if let expiry = account.accessExpiresAt, expiry <= context.now() {
        throw CLIError.accessTokenExpired(account: name, at: expiry)
    }
    let vault = try UnlockedVault.unlock(database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context), context: context)
    let token = try vault.accessToken(of: account)
    guard let text = token.copyToString() else {
        throw CLIError.integrity("the access token of '\(name)' is not text")
    }
    return (text, integration)
}
