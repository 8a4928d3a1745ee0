import Foundation
import TokenVaultCore
import VaultAgent
import VaultStore

/// Opening a vault's key: through the agent that holds it, when one does, else from the passphrase.
enum VaultUnlocking {
    /// The agent's socket for the vault at `location`, or nil when the vault file cannot be found.
    static func socketPath(location: String, context: Context) -> String? {
        AgentSocket.VaultIdentity.of(location: location).map {
            AgentSocket.path(for: $0, environment: context.environment)
        }
    }

    /// The agent holding this vault's key, checked to be this vault's (it must reproduce the audit head's MAC),
    /// or nil when there is none. An agent that answers with another key is ignored with a warning.
    static func agent(for database: any VaultStorage, context: Context) throws -> AgentClient? {
        guard let path = socketPath(location: database.location, context: context),
            let client = try AgentClient.connect(socketPath: path)
        else { return nil }
        switch try UnlockedVault.keyMatches(client, database: database) {
        case false?:
            context.console.warn("the agent at \(path) holds another key than this vault's; ignoring it")
            return nil
        default:
            return client
        }
    }

    /// The vault unlocked: by its agent (no prompt, no KDF) unless `allowAgent` is false or a passphrase was given
    /// on a descriptor, else with the passphrase as always.
    static func unlock(_ database: any VaultStorage, global: GlobalOptions, context: Context, allowAgent: Bool = true)
        throws -> UnlockedVault
    {
        if allowAgent, global.passphraseFd == nil {
            do {
                if let agent = try agent(for: database, context: context) {
                    return UnlockedVault(database: database, keys: agent)
                }
            } catch let error as AgentSocket.Failure {
                context.console.warn("not using the agent: \(error.localizedDescription)")
            } catch let error as AgentClient.Failure {
                context.console.warn("not using the agent: \(error.localizedDescription)")
            }
        }
        return try UnlockedVault.unlock(
            database, source: try PassphraseSource.resolve(fd: global.passphraseFd, context: context),
            keySlot: global.keySlot(context), context: context)
    }
}
