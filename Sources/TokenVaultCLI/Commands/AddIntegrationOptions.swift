import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

/// Redirect URIs and API bases: absolute http(s); plain http only to this machine.
enum URIRules {
    static let loopbackHosts: Set<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]

    static func check(_ text: String, what: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            throw CLIError.usage(
                "the \(what) \(Format.quoted(text)) is not an absolute URL",
                hint: "write it in full, e.g. http://localhost:8765/callback")
        }
        switch scheme {
        case "https": return
        case "http":
            guard loopbackHosts.contains(host.lowercased()) else {
                throw CLIError.usage(
                    "the \(what) \(Format.quoted(text)) uses plain http to a host other than this machine",
                    hint: "use https, or http only with localhost, 127.0.0.1 or [::1]")
            }
        default:
            throw CLIError.usage("the \(what) \(Format.quoted(text)) must use http or https")
        }
    }
}

/// An "OAuth Authorization URL" as a provider's portal shows it for an integration (Webex's does).
struct AuthorizationURL: Equatable {
    var apiBase: String
    var clientId: String
    var redirectURI: String
    var scopes: [String]

    static func parse(_ text: String, hint: String) throws -> AuthorizationURL {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let scheme = components.scheme, let host = components.host,
            components.path.hasSuffix("/authorize")
        else {
            throw CLIError.usage(
                "\(Format.quoted(text)) is not an OAuth authorization URL",
                hint: hint)
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
        return AuthorizationURL(
            apiBase: "\(scheme)://\(host)\(port)\(basePath)", clientId: clientId,
            redirectURI: redirect, scopes: scopes)
    }
}

extension Provider.ID: ExpressibleByArgument {}
extension Provider.ClientAuthStyle: ExpressibleByArgument {}

/// The provider's rules for an integration's scopes, as `add` and `integration edit` apply them: at least one where
/// the provider needs some, and the ones it cannot do without (Microsoft's `offline_access`) added with a note.
enum ScopeRules {
    static func apply(_ provider: Provider, to scopes: [String], context: Context) throws -> [String] {
        guard !scopes.isEmpty || !provider.scopesRequired else {
            throw CLIError.usage("at least one scope is needed", hint: provider.hints.scopesHint)
        }
        var scopes = scopes
        for required in provider.requiredScopes where !scopes.contains(required) {
            scopes.insert(required, at: 0)
            context.console.err(
                "tokenvault: note: added the scope \(required): \(provider.displayName) gives no refresh token without it\n"
            )
        }
        return scopes
    }
}

/// What `integration add` (and its old name `add`) takes, and what it does. Everything that differs between
/// providers comes from the provider value (VaultOAuth/Providers); nothing here knows one provider from another.
struct AddIntegrationOptions: ParsableArguments {
    @Argument(help: "A name for the integration.")
    var name: String

    @Option(
        help: ArgumentHelp(
            "The provider: \(Provider.ID.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "name"))
    var provider: Provider.ID = .webex

    @Option(help: "The integration's client id.")
    var clientId: String?

    @Option(help: "The redirect URI registered on the integration (exactly as registered).")
    var redirectURI: String?

    @Option(help: "Space-separated scopes, e.g. \"spark:all spark:kms\" (default: the provider's).")
    var scopes: String?

    @Option(
        help: ArgumentHelp(
            "The OAuth authorization URL the provider's portal shows for the integration (Webex: 'OAuth Authorization URL').",
            valueName: "url"))
    var fromURL: String?

    @Option(
        help:
            "API base URL (default: the provider's). For a provider on several hosts, every endpoint is served from this origin, keeping its path."
    )
    var apiBase: String?

    @Option(help: "The environment variable 'env' and 'exec' set (default: the provider's, e.g. WEBEX_ACCESS_TOKEN).")
    var envVar: String?

    @Option(
        help: ArgumentHelp(
            "Microsoft: common, organizations, consumers or a tenant id or domain (default common).",
            valueName: "tenant"))
    var tenant: String?

    @Option(
        help: ArgumentHelp(
            "Generic: the OpenID Connect issuer; its discovery document fills the endpoints.", valueName: "url"))
    var issuer: String?

    @Option(help: ArgumentHelp("Generic: the authorization endpoint.", valueName: "url"))
    var authorizeURL: String?
    @Option(help: ArgumentHelp("Generic: the token endpoint.", valueName: "url"))
    var tokenURL: String?
    @Option(help: ArgumentHelp("Generic: the device authorization endpoint (RFC 8628).", valueName: "url"))
    var deviceURL: String?
    @Option(help: ArgumentHelp("Generic: the revocation endpoint (RFC 7009).", valueName: "url"))
    var revokeURL: String?
    @Option(help: ArgumentHelp("Generic: the userinfo endpoint.", valueName: "url"))
    var userinfoURL: String?

    @Option(
        help: ArgumentHelp(
            "Generic: how the client authenticates at the token endpoint: basic or body (default basic, or what discovery says).",
            valueName: "style"))
    var clientAuth: Provider.ClientAuthStyle?

    @Flag(
        help:
            "A public client: no client secret is asked for or sent (Microsoft native apps, GitHub device flow, Slack PKCE apps)."
    )
    var publicClient = false

    @Flag(help: "Read the client secret from standard input.")
    var clientSecretStdin = false

    func run(global: GlobalOptions, context: Context) async throws {
        try Names.check(name, what: "integration")
        let preset = Provider.preset(provider)
        var clientId = clientId
        var redirectURI = redirectURI
        var scopes = scopes
        var apiBase = apiBase
        if let fromURL {
            let parsed = try AuthorizationURL.parse(
                fromURL,
                hint: preset.hints.authorizationURL
                    ?? "copy the whole authorization URL from the app's page at the provider")
            clientId = clientId ?? parsed.clientId
            redirectURI = redirectURI ?? parsed.redirectURI
            scopes = scopes ?? parsed.scopes.joined(separator: " ")
            // The URL's base is the API base only where the authorize endpoint sits below it (Webex).
            if case .relative = preset.endpoints.authorize { apiBase = apiBase ?? parsed.apiBase }
        }
        guard let clientId, !clientId.isEmpty else {
            throw CLIError.usage("a client id is needed", hint: "pass --client-id ID (\(preset.hints.registration))")
        }
        guard !clientId.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw CLIError.usage("the client id \(Format.quoted(clientId)) contains spaces")
        }
        guard let redirectURI else {
            throw CLIError.usage(
                "a redirect URI is needed", hint: "pass --redirect-uri URI; \(preset.hints.redirectURI)")
        }
        try URIRules.check(redirectURI, what: "redirect URI")
        if publicClient && !preset.allowsPublicClient {
            throw CLIError.usage(
                "\(preset.displayName) has no public clients; every integration has a client secret",
                hint: "leave out --public-client")
        }
        if publicClient && clientSecretStdin {
            throw CLIError.usage("--public-client and --client-secret-stdin contradict each other")
        }

        let options = try await providerOptions(preset, context: context)
        var scopeList = (scopes ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        if scopes == nil, scopeList.isEmpty {
            scopeList = provider == .generic && options?.issuer != nil ? ["openid"] : preset.defaultScopes
        }
        scopeList = try ScopeRules.apply(preset, to: scopeList, context: context)
        let configured = try Provider.configured(name: provider.rawValue, options: options)
        let base =
            apiBase ?? (provider == .generic ? Self.origin(options?.tokenURL) : nil)
            ?? configured.defaultAPIBase.absoluteString
        try URIRules.check(base, what: "API base")
        let variable = envVar ?? preset.defaultEnvironmentVariable
        try EnvExport.checkVariableName(variable)

        let database = try VaultStores.open(VaultLocation.path(option: global.vault, context: context))
        if try database.integrations().contains(where: { $0.name == name }) {
            throw StoreError.duplicateIntegration(name)
        }
        let vault = try VaultUnlocking.unlock(database, global: global, context: context)
        let secret = publicClient ? SecretBytes(count: 0) : try readClientSecret(context)
        let integration = try vault.addIntegration(
            Integration(
                name: name, provider: provider.rawValue, clientId: clientId, clientSecretSealed: [],
                redirectURI: redirectURI, scopes: scopeList,
                apiBase: base.hasSuffix("/") ? String(base.dropLast()) : base,
                envVar: variable, createdAt: context.now(), providerOptions: options.map { $0.encoded() }),
            clientSecret: secret)
        let scopeText = scopeList.isEmpty ? "none" : scopeList.joined(separator: " ")
        context.console.err(
            "Added \(preset.displayName) integration '\(name)' (client \(clientId)\(publicClient ? ", public" : ""), redirect \(redirectURI), scopes \(scopeText)).\n"
        )
        if let endpoints = IntegrationEndpoints.of(integration) {
            let what =
                publicClient
                ? "Authorization codes and refresh tokens" : "Its client secret, authorization codes and refresh tokens"
            context.console.err(
                "\(what) will be sent to \(endpoints.token.absoluteString); the browser goes to \(endpoints.authorize.absoluteString)\(endpoints.revoke.map { "; revocations go to \($0.absoluteString)" } ?? "").\n"
            )
        }
    }

    /// The options stored with the integration: a tenant, or a generic provider's endpoints (from discovery or
    /// the flags). Nil when the preset is used as it is.
    private func providerOptions(_ preset: Provider, context: Context) async throws -> ProviderOptions? {
        let endpointFlags = [
            ("--authorize-url", authorizeURL), ("--token-url", tokenURL), ("--device-url", deviceURL),
            ("--revoke-url", revokeURL), ("--userinfo-url", userinfoURL),
        ]
        if provider != .generic {
            if let given = endpointFlags.first(where: { $0.1 != nil }) ?? (issuer != nil ? ("--issuer", issuer) : nil)
                ?? (clientAuth != nil ? ("--client-auth", "") : nil)
            {
                throw CLIError.usage(
                    "\(given.0) is for --provider generic; \(preset.displayName)'s endpoints are built in",
                    hint: "use --api-base URL to serve them from another origin")
            }
        }
        if provider != .microsoft, tenant != nil {
            throw CLIError.usage("--tenant is for --provider microsoft")
        }
        switch provider {
        case .microsoft:
            guard let tenant else { return nil }
            guard !tenant.isEmpty, tenant.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                throw CLIError.usage(
                    "the tenant \(Format.quoted(tenant)) is not common, organizations, consumers, a tenant id or a domain"
                )
            }
            return ProviderOptions(tenant: tenant)
        case .generic:
            var options: ProviderOptions
            if let issuer {
                guard endpointFlags.allSatisfy({ $0.1 == nil }) else {
                    throw CLIError.usage(
                        "--issuer fills the endpoints from discovery; leave out the endpoint flags, or --issuer")
                }
                try URIRules.check(issuer, what: "issuer")
                guard let issuerURL = URL(string: issuer) else {
                    throw CLIError.usage("the issuer \(Format.quoted(issuer)) is not a URL")
                }
                do {
                    options = try await OIDCDiscovery.discover(issuer: issuerURL, transport: context.makeTransport(nil))
                } catch let error as OAuthError {
                    throw CLIError.provider(
                        "OpenID Connect discovery at \(OIDCDiscovery.documentURL(issuer: issuerURL).absoluteString) failed: \(error.localizedDescription)",
                        hint: "check the issuer URL; or give the endpoints with --authorize-url and --token-url")
                }
            } else {
                guard let authorizeURL, let tokenURL else {
                    throw CLIError.usage(
                        "a generic provider needs --issuer URL, or --authorize-url URL and --token-url URL")
                }
                options = ProviderOptions(
                    authorizeURL: authorizeURL, tokenURL: tokenURL, deviceURL: deviceURL,
                    revokeURL: revokeURL, userinfoURL: userinfoURL)
            }
            for (flag, value) in [
                ("authorization URL", options.authorizeURL), ("token URL", options.tokenURL),
                ("device URL", options.deviceURL), ("revocation URL", options.revokeURL),
                ("userinfo URL", options.userinfoURL),
            ] {
                if let value { try URIRules.check(value, what: flag) }
            }
            if let clientAuth { options.clientAuth = clientAuth }
            return options
        default:
            return nil
        }
    }

    static func origin(_ text: String?) -> String? {
        guard let text, let c = URLComponents(string: text), let scheme = c.scheme, let host = c.host else {
            return nil
        }
        return "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)\(c.port.map { ":\($0)" } ?? "")"
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
            throw CLIError.usage(
                "the client secret is needed and there is no terminal to ask on",
                hint: "pipe it in with --client-secret-stdin")
        }
        guard secret.count > 0 else { throw CLIError.usage("the client secret is empty") }
        return secret
    }
}
