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
