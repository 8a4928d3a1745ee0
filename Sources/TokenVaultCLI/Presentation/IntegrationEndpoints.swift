import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

/// Where an integration's requests go, for a person to check before trusting it with a client secret: the same
/// URLs the OAuth client builds (the token endpoint is where the client secret and the refresh tokens are sent).
enum IntegrationEndpoints {
    /// Nil when the integration cannot be read (an unknown provider, an invalid API base): the caller shows "?".
    static func of(_ integration: Integration) -> Provider.ResolvedEndpoints? {
        guard let provider = try? Provider.of(integration), let base = URL(string: integration.apiBase) else {
            return nil
        }
        let options = (try? ProviderOptions.decode(integration.providerOptions)) ?? nil
        return provider.resolvedEndpoints(base: base, tenant: options?.tenant, clientId: integration.clientId)
    }

    /// Labelled lines, for `integration show` and `add`'s confirmation.
    static func lines(_ e: Provider.ResolvedEndpoints) -> [(String, String)] {
        [
            ("authorize", e.authorize.absoluteString),
            ("token", e.token.absoluteString + " (receives the client secret, authorization codes and refresh tokens)"),
            ("device authorization", e.deviceAuthorize?.absoluteString ?? "-"),
            ("revocation", e.revoke?.absoluteString ?? "- (none: tokens are only removed from the vault)"),
            ("userinfo", e.identity?.absoluteString ?? "-"),
        ]
    }
}
