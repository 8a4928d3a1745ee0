import Foundation
import VaultOAuth
import VaultStore

/// Turns a provider's token response into the account's stored pair: the one rule for import, authorize and
/// refresh. Lifetimes are the returned ones, never assumed; a response without a refresh token keeps the old one
/// (Webex may not send a new one) together with its old expiry.
public enum TokenStore {
    public static func apply(_ response: TokenResponse, to account: inout Account, vault: UnlockedVault, now: Date) throws {
        account.accessTokenSealed = try vault.seal(response.accessToken, label: SealLabel.accessToken(account))
        account.accessExpiresAt = now.addingTimeInterval(TimeInterval(response.expiresIn))
        if let refresh = response.refreshToken {
            account.refreshTokenSealed = try vault.seal(refresh, label: SealLabel.refreshToken(account))
            account.refreshExpiresAt = response.refreshTokenExpiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
        } else if let lifetime = response.refreshTokenExpiresIn, account.refreshTokenSealed != nil {
            account.refreshExpiresAt = now.addingTimeInterval(TimeInterval(lifetime))
        }
        if let scope = response.scope { account.grantedScopes = scope }
        account.state = .ok
        account.updatedAt = now
    }
}
