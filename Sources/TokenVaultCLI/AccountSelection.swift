import ArgumentParser
import Foundation
import VaultStore

/// Which accounts a command that works on many (`refresh-all`, `check`, `list`) works on: the accounts named as
/// arguments and those of the integrations given with `--integration`; every account when neither is given.
struct AccountSelection: ParsableArguments {
    @Option(
        name: .customLong("integration"),
        help: ArgumentHelp(
            "Include the accounts of this integration (repeatable; default: every account).", valueName: "name"),
        completion: .integrationNames)
    var integrations: [String] = []

    @Argument(
        help: ArgumentHelp("Include these accounts (default: every account).", valueName: "account"),
        completion: .accountNames)
    var accounts: [String] = []

    var selectsAll: Bool { integrations.isEmpty && accounts.isEmpty }

    /// A test for "is this account selected?", made after checking every name given against the vault: a
    /// misspelt account or integration is an error (exit 4), never an empty selection that reports success.
    func matcher(_ database: any VaultStorage) throws -> (_ account: String, _ integrationId: String) -> Bool {
        if selectsAll { return { _, _ in true } }
        let known = try database.integrations()
        let ids = Set(
            try integrations.map { name in
                guard let found = known.first(where: { $0.name == name }) else {
                    throw StoreError.noSuchIntegration(name)
                }
                return found.id
            })
        let names = Set(try database.accountSummaries().map(\.name))
        if let missing = accounts.first(where: { !names.contains($0) }) { throw StoreError.noSuchAccount(missing) }
        let wanted = Set(accounts)
        return { account, integrationId in wanted.contains(account) || ids.contains(integrationId) }
    }

    /// ``matcher(_:)`` for stored accounts.
    func includer(_ database: any VaultStorage) throws -> (Account) -> Bool {
        let matches = try matcher(database)
        return { matches($0.name, $0.integrationId) }
    }
}
