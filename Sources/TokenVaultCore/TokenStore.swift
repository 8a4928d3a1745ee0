import Foundation
import VaultCrypto
import VaultOAuth
import VaultStore

/// Turns a provider's token response into the account's stored pair: the one rule for import, authorize and
/// refresh. Lifetimes are the returned ones, never assumed; a response without a refresh token keeps the old one
/// (Webex may not send a new one) together with its old expiry.
public enum TokenStore {
    /// The pair gets a new random id (bound into both tokens' labels: record it as the audit entry's `pair`); a
    /// refresh token that is kept is sealed again under the new id's label.
    public static func apply(_ response: TokenResponse, to account: inout Account, vault: UnlockedVault, now: Date)
        throws
    {
        let kept: SecretBytes? =
            response.refreshToken == nil && account.refreshTokenSealed != nil
            ? try vault.refreshToken(of: account) : nil
        account.pair = newPairId()
        if let kept { account.refreshTokenSealed = try vault.seal(kept, label: SealLabel.refreshToken(account)) }
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

    /// 16 random bytes, hex: unique among an account's pairs, and nothing secret.
    static func newPairId() -> String {
        Random.bytes(16).map { String(format: "%02x", $0) }.joined()
    }
}
