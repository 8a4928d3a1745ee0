import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

extension TokenVault {
    struct Import: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Store token pairs obtained elsewhere (a token response JSON on standard input).",
            discussion: """
                Reads {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type"} from \
                standard input; expiries are now + the lifetimes. With --batch, reads JSON Lines instead, one object \
                per account with an extra "account" field; every line is checked before anything is stored, and all \
                are stored in one transaction with one passphrase prompt. Input is checked before the passphrase is \
                asked for. An existing account needs --replace. Tokens must be RFC 6750 b64token text (exit 6 \
                otherwise). Examples:
                  tokenvault import alice --integration reporting < token.json
                  tokenvault import --batch --integration reporting < pairs.jsonl
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name (omit with --batch).", completion: .accountNames)
        var account: String?

        @Option(
            help: "The integration the tokens were issued to (default: the account's, or the only one).",
            completion: .integrationNames)
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
                integration, database: database,
                existing: batch ? nil : account.flatMap { try? database.account(named: $0) })
            // Read and check all input before asking for the passphrase: a typo costs no KDF run.
            let input = try context.readStandardInput()
            let pairs =
                try batch
                ? Self.parseBatch(input)
                : [(account!, try Self.parse(input, account: account!, integration: integration.name))]
            var existing: [String: Account] = [:]
            for account in try database.accounts() { existing[account.name] = account }
            for (name, _) in pairs {
                try Names.check(name, what: "account")
                if let old = existing[name] {
                    if !replace { throw StoreError.duplicateAccount(name) }
                    if old.integrationId != integration.id {
                        throw CLIError.usage(
                            "account '\(name)' belongs to another integration",
                            hint: "revoke it first, or import under another name")
                    }
                }
            }
            let vault = try unlock(context)
            try vault.importPairs(
                pairs.map { UnlockedVault.NewPair(account: $0.0, response: $0.1, replacing: existing[$0.0]) },
                integration: integration, now: context.now())
            if batch {
                context.console.err(
                    "Imported \(pairs.count) token pair\(pairs.count == 1 ? "" : "s") into integration '\(integration.name)'.\n"
                )
            } else if let response = pairs.first?.1 {
                let what = response.refreshToken == nil ? "an access token (no refresh token)" : "a token pair"
                context.console.err(
                    "Imported \(what) for '\(pairs[0].0)': access token valid \(Format.span(response.expiresIn))"
                        + (response.refreshTokenExpiresIn.map { ", refresh token \(Format.span($0))" } ?? "") + ".\n")
            }
        }

        static func parse(_ data: Data, account: String, integration: String) throws -> TokenResponse {
            do {
                return try TokenResponse.parse(data)
            } catch let e as OAuthError where e.isTokenCharacterRefusal {
                throw CLIError.provider(
                    e.localizedDescription,
                    hint: "a bearer token has only letters, digits, - . _ ~ + / and trailing =; check what was pasted")
            } catch {
                throw CLIError.usage(
                    error.localizedDescription,
                    hint:
                        "pipe in the JSON the token endpoint returned, e.g. \(Format.command("tokenvault import \(account) --integration \(integration) < token.json"))"
                )
            }
        }

        static func parseBatch(_ data: Data) throws -> [(String, TokenResponse)] {
            var pairs: [(String, TokenResponse)] = []
            var seen = Set<String>()
            for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .enumerated()
            {
                let lineData = Data(line)
                if lineData.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let where_ = "line \(index + 1)"
                guard let object = try? JSONSerialization.jsonObject(with: lineData) as? [String: Any],
                    let name = object["account"] as? String
                else {
                    throw CLIError.usage(
                        "\(where_): expected a JSON object with an \"account\" field",
                        hint: "one object per line: {\"account\": \"alice\", \"access_token\": …, \"expires_in\": …}")
                }
                do {
                    pairs.append((name, try TokenResponse.parse(lineData)))
                } catch let e as OAuthError where e.isTokenCharacterRefusal {
                    throw CLIError.provider("\(where_) (account \(Format.quoted(name))): \(e.localizedDescription)")
                } catch {
                    throw CLIError.usage("\(where_) (account \(Format.quoted(name))): \(error.localizedDescription)")
                }
                guard seen.insert(name).inserted else {
                    throw CLIError.usage("\(where_): account \(Format.quoted(name)) appears twice")
                }
            }
            guard !pairs.isEmpty else { throw CLIError.usage("no token pairs on standard input") }
            return pairs
        }
    }
}
