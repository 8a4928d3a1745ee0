import Foundation
import TokenVaultCore

extension RefreshOutcome {
    var jsonObject: [String: Any] {
        var o: [String: Any] = ["account": account, "integration": integration, "status": status.rawValue]
        o["access_expires_before"] = accessExpiresBefore.map(Format.timestamp)
        o["access_expires_at"] = accessExpiresAfter.map(Format.timestamp)
        o["refresh_expires_before"] = refreshExpiresBefore.map(Format.timestamp)
        o["refresh_expires_at"] = refreshExpiresAfter.map(Format.timestamp)
        o["refresh_token_changed"] = refreshTokenChanged
        o["error"] = reason
        o["tracking_id"] = trackingId
        return o
    }
}
