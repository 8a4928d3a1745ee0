import Foundation
import TokenVaultCore
import VaultStore

/// Which integration a command means: the one named, else the account's, else the only one there is.
enum IntegrationChoice {
    static func resolve(_ name: String?, database: any VaultStorage, existing: Account? = nil) throws -> Integration {
        if let name { return try database.integration(named: name) }
        if let existing, let owner = try database.integration(id: existing.integrationId) { return owner }
        let all = try database.integrations()
        if all.count == 1 { return all[0] }
        if all.isEmpty {
            throw CLIError.usage(
                "no integration is registered", hint: "register one with 'tokenvault integration add NAME …'")
        }
        let names = all.map(\.name).sorted()
        throw CLIError.usage(
            "several integrations are registered (\(names.joined(separator: ", "))); say which one",
            hint: "pass --integration \(names.joined(separator: "|"))")
    }
}
