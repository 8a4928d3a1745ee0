import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultOAuth

extension TokenVault {
    struct EditIntegration: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "edit",
            abstract:
                "Change an integration's client secret, scopes, API base, redirect URI or variable; its accounts are kept.",
            discussion: """
                Each change is checked as 'integration add' checks it and written to the audit log (one entry per \
                field; the secret itself never). The client secret is re-sealed, bound to the new settings. Accounts \
                keep their token pairs; new scopes are requested at the next 'tokenvault authorize', and a new \
                redirect URI must be registered at the provider. No option: exit 2; an unknown integration: exit 4.
                Examples:
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
                throw CLIError.usage(
                    "nothing to change for integration '\(name)'",
                    hint: "pass --client-secret-stdin, --scopes, --api-base, --redirect-uri or --env-var")
            }
            // Checked as 'add' checks them, before the passphrase: a typo costs no KDF run.
            var scopeList = scopes.map { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
            if let redirectURI { try URIRules.check(redirectURI, what: "redirect URI") }
            if let apiBase { try URIRules.check(apiBase, what: "API base") }
            if let envVar { try EnvExport.checkVariableName(envVar) }

            let database = try openDatabase(context)
            let old = try database.integration(named: name)
            // The provider's rules for scopes, as 'add' applies them.
            let provider = try Provider.of(old)
            if let list = scopeList { scopeList = try ScopeRules.apply(provider, to: list, context: context) }
            var new = old
            if let scopeList { new.scopes = scopeList }
            if let apiBase { new.apiBase = apiBase.hasSuffix("/") ? String(apiBase.dropLast()) : apiBase }
            if let redirectURI { new.redirectURI = redirectURI }
            if let envVar { new.envVar = envVar }
            let planned = UnlockedVault.IntegrationChange.between(old, new, secretReplaced: clientSecretStdin)
            guard !planned.isEmpty else {
                context.console.err("Integration '\(name)' already has those settings; nothing changed.\n")
                return
            }
            let replacement = clientSecretStdin ? try readClientSecret(context) : nil
            let vault = try unlock(context)
            let changes = try vault.editIntegration(old, to: new, clientSecret: replacement, now: context.now())
            let accounts = try database.accountCount(integrationId: old.id)
            context.console.err(
                "Edited integration '\(name)': \(changes.map(\.field).joined(separator: ", ")) changed; its \(accounts) account\(accounts == 1 ? "" : "s") kept.\n"
            )
            if new.scopes != old.scopes && accounts > 0 {
                context.console.err(
                    "tokenvault: hint: accounts keep the scopes they were granted; 'tokenvault authorize NAME' requests the new ones\n"
                )
            }
            if new.redirectURI != old.redirectURI {
                context.console.err(
                    "tokenvault: hint: the redirect URI must be registered on the integration at the provider exactly as given\n"
                )
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
}
