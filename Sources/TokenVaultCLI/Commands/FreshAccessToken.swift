import Foundation
import TokenVaultCore
import VaultStore

/// The access token to hand out, refreshed first when it lapses within `minValid`; never an expired one
/// (`TokenService`).
func freshAccessToken(
    account: String, global: GlobalOptions, minValid: TimeInterval, trigger: AuditTrigger,
    context: Context
) async throws -> (String, Integration) {
    let (token, integration, _) = try await freshAccessTokenAndVault(
        account: account, global: global, minValid: minValid,
        trigger: trigger, context: context)
    return (token, integration)
}

func freshAccessTokenAndVault(
    account name: String, global: GlobalOptions, minValid: TimeInterval, trigger: AuditTrigger,
    context: Context
) async throws -> (String, Integration, UnlockedVault) {
    let database = try VaultStores.open(VaultLocation.path(option: global.vault, context: context))
    let account = try database.account(named: name)
    guard let integration = try database.integration(id: account.integrationId) else {
        throw StoreError.noSuchIntegration(account.integrationId)
    }
    let vault = try VaultUnlocking.unlock(database, global: global, context: context)
    let text = try await TokenService(vault: vault, services: context.services, verbose: global.verbose)
        .freshAccessToken(account: account, integration: integration, minValid: minValid, trigger: trigger)
    // exec replaces this process and never reaches the end of TokenVault.run: report a failed mlock here.
    MemoryLockReport.print(context: context, verbose: global.verbose)
    return (text, integration, vault)
}
