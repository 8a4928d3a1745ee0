import Foundation
import VaultStore

/// The vault a command works on (``VaultLocation/resolve(option:environment:currentDirectory:)``): `--vault`,
/// else `TOKENVAULT_VAULT`, else `$XDG_DATA_HOME/tokenvault/vault.db`.
extension VaultLocation {
    static func resolve(option: String?, context: Context) -> VaultLocation {
        resolve(option: option, environment: context.environment)
    }

    /// The same, as the text a store is opened with.
    static func path(option: String?, context: Context) -> String {
        path(option: option, environment: context.environment)
    }

    static func path(option: String?, environment: [String: String]) -> String {
        resolve(option: option, environment: environment).text
    }
}
