import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

extension TokenVault {
    /// `tokenvault integration add|list|remove|edit`.
    struct IntegrationGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "integration",
            abstract: "Register, list, edit and remove OAuth integrations.",
            subcommands: [AddIntegration.self, ListIntegrations.self, EditIntegration.self, RemoveIntegrationCommand.self])
    }

    struct AddIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Register an OAuth integration (client id, secret, redirect URI, scopes).",
            discussion: """
                The client secret is read from the terminal without echo, or from standard input with \
                --client-secret-stdin; never from the command line. --from-url takes the "OAuth Authorization URL" \
                the Webex developer portal shows for an integration and fills client id, redirect URI and scopes.
                Examples:
                  tokenvault integration add reporting --client-id C0ffee… --redirect-uri http://localhost:8765/callback --scopes "spark:people_read spark:rooms_read"
                  tokenvault integration add reporting --from-url 'https://webexapis.com/v1/authorize?client_id=…&response_type=code&redirect_uri=…&scope=…'
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: AddIntegrationOptions

        func run(_ context: Context) async throws { try await options.run(global: global, context: context) }
    }

    /// The old name of `integration add`, kept for scripts.
    struct Add: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Same as 'tokenvault integration add'.", shouldDisplay: false)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: AddIntegrationOptions

        func run(_ context: Context) async throws { try await options.run(global: global, context: context) }
    }

    struct ListIntegrations: VaultCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List registered integrations (no passphrase needed).")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws { try Self.list(try openDatabase(context), json: json, context: context) }

        static func list(_ database: VaultDatabase, json: Bool, context: Context) throws {
            let integrations = try database.integrations()
            if json {
                let objects: [[String: Any]] = try integrations.map { i in
                    [
                        "name": i.name, "provider": i.provider, "client_id": i.clientId, "redirect_uri": i.redirectURI,
                        "scopes": i.scopes, "api_base": i.apiBase, "env_var": i.envVar,
                        "accounts": try database.accountCount(integrationId: i.id),
                    ]
                }
                context.console.out(Format.json(objects) + "\n")
                return
            }
            var rows = [["NAME", "CLIENT ID", "REDIRECT URI", "SCOPES", "API BASE", "VARIABLE", "ACCOUNTS"]]
            for i in integrations {
                rows.append([i.name, i.clientId, i.redirectURI, i.scopes.joined(separator: " "), i.apiBase, i.envVar,
                             String(try database.accountCount(integrationId: i.id))])
            }
            context.console.out(Table.render(rows))
        }
    }

    /// The old name of `integration list`.
    struct Integrations: VaultCommand {
        static let configuration = CommandConfiguration(abstract: "Same as 'tokenvault integration list'.", shouldDisplay: false)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws { try ListIntegrations.list(try openDatabase(context), json: json, context: context) }
    }

    struct EditIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "edit",
            abstract: "Change an integration's client secret, scopes, API base, redirect URI or variable; its accounts are kept.",
            discussion: """
                Each change is checked as 'integration add' checks it and written to the audit log (one entry per \
                field; the secret itself never). The client secret is re-sealed, bound to the new settings. Accounts \
                keep their token pairs; new scopes are requested at the next 'tokenvault authorize'. Examples:
                  tokenvault integration edit reporting --client-secret-stdin < new-secret.txt
                  tokenvault integration edit reporting --scopes "spark:people_read spark:rooms_read" --env-var REPORTING_TOKEN
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The integration's name.", completion: .integrationNames)
        var name: String

        @Flag(help: "Read a new client secret from standard input.")
        var clientSecretStdin = false

        @Option(help: "Space-separated scopes to request from now on.")
        var scopes: String?

        @Option(help: "API base URL.")
        var apiBase: String?

        @Option(help: "The redirect URI registered on the integration (exactly as registered).")
        var redirectURI: String?

        @Option(help: "The environment variable 'env' and 'exec' set.")
        var envVar: String?

        func run(_ context: Context) async throws {
            guard clientSecretStdin || scopes != nil || apiBase != nil || redirectURI != nil || envVar != nil else {
                throw CLIError.usage("nothing to change for integration '\(name)'",
                                     hint: "pass --client-secret-stdin, --scopes, --api-base, --redirect-uri or --env-var")
            }
            // Checked as 'add' checks them, before the passphrase: a typo costs no KDF run.
            let scopeList = scopes.map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
            if let scopeList, scopeList.isEmpty {
                throw CLIError.usage("at least one scope is needed", hint: "pass --scopes \"spark:people_read …\"")
            }
            if let redirectURI { try URIRules.check(redirectURI, what: "redirect URI") }
            if let apiBase { try URIRules.check(apiBase, what: "API base") }
            if let envVar { try EnvExport.checkVariableName(envVar) }

            let database = try openDatabase(context)
            let old = try database.integration(named: name)
            var new = old
            if let scopeList { new.scopes = scopeList }
            if let apiBase { new.apiBase = apiBase.hasSuffix("/") ? String(apiBase.dropLast()) : apiBase }
            if let redirectURI { new.redirectURI = redirectURI }
            if let envVar { new.envVar = envVar }
            var changes: [(field: String, detail: String?)] = []
            if new.scopes != old.scopes { changes.append(("scopes", "\(old.scopes.joined(separator: " ")) -> \(new.scopes.joined(separator: " "))")) }
            if new.apiBase != old.apiBase { changes.append(("API base", "\(old.apiBase) -> \(new.apiBase)")) }
            if new.redirectURI != old.redirectURI { changes.append(("redirect URI", "\(old.redirectURI) -> \(new.redirectURI)")) }
            if new.envVar != old.envVar { changes.append(("variable", "\(old.envVar) -> \(new.envVar)")) }
            if clientSecretStdin { changes.append(("client secret", nil)) }
            guard !changes.isEmpty else {
                context.console.err("Integration '\(name)' already has those settings; nothing changed.\n")
                return
            }
            let replacement = clientSecretStdin ? try readClientSecret(context) : nil
            let vault = try unlock(context)
            // Opening the current secret checks the stored settings it is bound to before anything is re-bound.
            let current = try vault.clientSecret(of: old)
            // Read again: a legacy re-seal may just have replaced the sealed bytes; any other difference is an edit
            // made meanwhile, and this one would undo it.
            let stored = try vault.database.integration(named: name)
            var unsealed = stored
            unsealed.clientSecretSealed = old.clientSecretSealed
            guard unsealed == old else {
                throw CLIError.busy("integration '\(name)' changed while it was being edited", hint: "run the edit again")
            }
            new.clientSecretSealed = try vault.seal(replacement ?? current, label: SealLabel.clientSecret(new))
            let now = context.now()
            try vault.database.write { w in
                try w.update(new, previousSecret: stored.clientSecretSealed)
                for change in changes {
                    try vault.appendAudit(AuditDraft(
                        at: now, account: "", integration: name, event: .integrationEdited, trigger: "integration edit",
                        outcome: "integration '\(name)': \(change.field) \(change.field == "client secret" ? "replaced" : "changed")",
                        detail: change.detail), in: w)
                }
            }
            let accounts = try database.accountCount(integrationId: old.id)
            context.console.err("Edited integration '\(name)': \(changes.map(\.field).joined(separator: ", ")) changed; its \(accounts) account\(accounts == 1 ? "" : "s") kept.\n")
            if new.scopes != old.scopes && accounts > 0 {
                context.console.err("tokenvault: hint: accounts keep the scopes they were granted; 'tokenvault authorize NAME' requests the new ones\n")
            }
            if new.redirectURI != old.redirectURI {
                context.console.err("tokenvault: hint: the redirect URI must be registered on the integration at the provider exactly as given\n")
            }
        }

        private func readClientSecret(_ context: Context) throws -> SecretBytes {
            var data = [UInt8](try context.readStandardInput())
            defer { _ = data.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            while let last = data.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { data.removeLast() }
            guard !data.isEmpty else { throw CLIError.usage("the client secret is empty") }
            return SecretBytes(copying: data)
        }
    }

    struct RemoveIntegrationCommand: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove an integration; refused while accounts use it unless --force (which removes them too).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The integration's name.", completion: .integrationNames)
        var name: String

        @Flag(help: "Also remove the accounts that use it (their token pairs are deleted locally, not revoked).")
        var force = false

        func run(_ context: Context) async throws {
            try await RemoveIntegration.remove(name, force: force, global: global, context: context)
        }
    }

    /// The old name of `integration remove`.
    struct RemoveIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-integration", abstract: "Same as 'tokenvault integration remove'.", shouldDisplay: false)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The integration's name.", completion: .integrationNames)
        var name: String

        @Flag(help: "Also remove the accounts that use it (their token pairs are deleted locally, not revoked).")
        var force = false

        func run(_ context: Context) async throws {
            try await Self.remove(name, force: force, global: global, context: context)
        }

        static func remove(_ name: String, force: Bool, global: GlobalOptions, context: Context) async throws {
            let database = try VaultDatabase.open(at: VaultLocation.path(option: global.vault, context: context))
            let integration = try database.integration(named: name)
            let affected = try database.accounts().filter { $0.integrationId == integration.id }
            if !affected.isEmpty && !force { throw StoreError.integrationInUse(name, accounts: affected.count) }
            // The audit entries for the removed accounts need the key, so unlock only when there are some.
            if !affected.isEmpty {
                let vault = try UnlockedVault.unlock(database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context), context: context)
                context.console.err("Removing \(affected.count) account\(affected.count == 1 ? "" : "s") with it: \(affected.map(\.name).joined(separator: ", ")).\n")
                try vault.database.write { w in
                    for account in affected {
                        try vault.appendAudit(AuditDraft(
                            at: context.now(), account: account.name, integration: name, event: .revoked,
                            trigger: "remove-integration", outcome: "removed locally",
                            accessExpiresBefore: account.accessExpiresAt, refreshExpiresBefore: account.refreshExpiresAt),
                            in: w)
                    }
                    try w.deleteIntegration(id: integration.id)
                }
            } else {
                try database.write { try $0.deleteIntegration(id: integration.id) }
            }
            try database.purgeDeletedData()
            context.console.err("Removed integration '\(name)'.\n")
        }
    }
}

/// Redirect URIs and API bases: absolute http(s); plain http only to this machine.
enum URIRules {
    static let loopbackHosts: Set<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]

    static func check(_ text: String, what: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw CLIError.usage("the \(what) \(Format.quoted(text)) is not an absolute URL",
                                 hint: "write it in full, e.g. http://localhost:8765/callback")
        }
        switch scheme {
        case "https": return
        case "http":
            guard loopbackHosts.contains(host.lowercased()) else {
                throw CLIError.usage("the \(what) \(Format.quoted(text)) uses plain http to a host other than this machine",
                                     hint: "use https, or http only with localhost, 127.0.0.1 or [::1]")
            }
        default:
            throw CLIError.usage("the \(what) \(Format.quoted(text)) must use http or https")
        }
    }
}

/// The "OAuth Authorization URL" the Webex developer portal shows for an integration.
struct AuthorizationURL: Equatable {
    var apiBase: String
    var clientId: String
    var redirectURI: String
    var scopes: [String]

    static func parse(_ text: String) throws -> AuthorizationURL {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let scheme = components.scheme, let host = components.host,
              components.path.hasSuffix("/authorize") else {
            throw CLIError.usage("\(Format.quoted(text)) is not an OAuth authorization URL",
                                 hint: "copy the whole 'OAuth Authorization URL' from the integration's page on developer.webex.com")
        }
        let items = components.queryItems ?? []
        func value(_ name: String) -> String? { items.first(where: { $0.name == name })?.value }
        guard let clientId = value("client_id"), !clientId.isEmpty else {
            throw CLIError.usage("the authorization URL has no client_id")
        }
        guard let redirect = value("redirect_uri"), !redirect.isEmpty else {
            throw CLIError.usage("the authorization URL has no redirect_uri")
        }
        let scopes = (value("scope") ?? "").split(whereSeparator: { $0 == " " || $0 == "+" }).map(String.init)
        let basePath = String(components.path.dropLast("/authorize".count))
        let port = components.port.map { ":\($0)" } ?? ""
        return AuthorizationURL(apiBase: "\(scheme)://\(host)\(port)\(basePath)", clientId: clientId,
                                redirectURI: redirect, scopes: scopes)
    }
}

/// What `integration add` (and its old name `add`) takes, and what it does.
struct AddIntegrationOptions: ParsableArguments {
    @Argument(help: "A name for the integration.")
    var name: String

    @Option(help: "The integration's client id.")
    var clientId: String?

    @Option(help: "The redirect URI registered on the integration (exactly as registered).")
    var redirectURI: String?

    @Option(help: "Space-separated scopes, e.g. \"spark:all spark:kms\".")
    var scopes: String?

    @Option(help: ArgumentHelp("The OAuth Authorization URL from the Webex developer portal.", valueName: "url"))
    var fromURL: String?

    @Option(help: "API base URL (default https://webexapis.com/v1).")
    var apiBase: String?

    @Option(help: "The environment variable 'env' and 'exec' set (default WEBEX_ACCESS_TOKEN).")
    var envVar: String?

    @Flag(help: "Read the client secret from standard input.")
    var clientSecretStdin = false

    func run(global: GlobalOptions, context: Context) async throws {
        try Names.check(name, what: "integration")
        var clientId = clientId, redirectURI = redirectURI, scopes = scopes, apiBase = apiBase
        if let fromURL {
            let parsed = try AuthorizationURL.parse(fromURL)
            clientId = clientId ?? parsed.clientId
            redirectURI = redirectURI ?? parsed.redirectURI
            scopes = scopes ?? parsed.scopes.joined(separator: " ")
            apiBase = apiBase ?? parsed.apiBase
        }
        guard let clientId, !clientId.isEmpty else {
            throw CLIError.usage("a client id is needed", hint: "pass --client-id ID or --from-url 'URL'")
        }
        guard !clientId.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw CLIError.usage("the client id \(Format.quoted(clientId)) contains spaces")
        }
        guard let redirectURI else {
            throw CLIError.usage("a redirect URI is needed", hint: "pass --redirect-uri URI, exactly as registered on the integration")
        }
        try URIRules.check(redirectURI, what: "redirect URI")
        let scopeList = (scopes ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        guard !scopeList.isEmpty else {
            throw CLIError.usage("at least one scope is needed", hint: "pass --scopes \"spark:people_read …\"")
        }
        let provider = Provider.webex
        let base = apiBase ?? provider.defaultAPIBase.absoluteString
        try URIRules.check(base, what: "API base")
        let variable = envVar ?? provider.defaultEnvironmentVariable
        try EnvExport.checkVariableName(variable)

        let database = try VaultDatabase.open(at: VaultLocation.path(option: global.vault, context: context))
        if try database.integrations().contains(where: { $0.name == name }) {
            throw StoreError.duplicateIntegration(name)
        }
        let vault = try UnlockedVault.unlock(database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context), context: context)
        let secret = try readClientSecret(context)
        var integration = Integration(
            name: name, provider: provider.name, clientId: clientId, clientSecretSealed: [],
            redirectURI: redirectURI, scopes: scopeList, apiBase: base.hasSuffix("/") ? String(base.dropLast()) : base,
            envVar: variable, createdAt: context.now())
        integration.clientSecretSealed = try vault.seal(secret, label: SealLabel.clientSecret(integration))
        try vault.database.write { try $0.insert(integration) }
        context.console.err("Added integration '\(name)' (client \(clientId), redirect \(redirectURI), scopes \(scopeList.joined(separator: " "))).\n")
    }

    private func readClientSecret(_ context: Context) throws -> SecretBytes {
        let secret: SecretBytes
        if clientSecretStdin {
            var data = [UInt8](try context.readStandardInput())
            defer { _ = data.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            while let last = data.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { data.removeLast() }
            secret = SecretBytes(copying: data)
        } else if let terminal = context.terminal, terminal.isAvailable {
            secret = try terminal.readSecret(prompt: "Client secret for '\(name)': ")
        } else {
            throw CLIError.usage("the client secret is needed and there is no terminal to ask on",
                                 hint: "pipe it in with --client-secret-stdin")
        }
        guard secret.count > 0 else { throw CLIError.usage("the client secret is empty") }
        return secret
    }
}
