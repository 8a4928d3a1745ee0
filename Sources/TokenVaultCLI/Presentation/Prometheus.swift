import ArgumentParser
import Foundation
import TokenVaultCore
import VaultOAuth
import VaultStore

/// `list --format prometheus`: the text exposition format, for the node exporter's textfile collector
/// (`tokenvault list --format prometheus > /var/lib/node_exporter/textfile/tokenvault.prom.$$ && mv …`).
enum Prometheus {
    /// `pairStoredAt`: when each account's pair was stored (``VaultStorage/pairStoredTimes()``); an account with
    /// none known gets no `tokenvault_last_stored_seconds` sample rather than a wrong one.
    static func render(
        _ accounts: [AccountSummary], integrations: [String: String], providers: [String: String],
        pairStoredAt: [String: Date], now: Date
    ) -> String {
        func label(_ value: String) -> String {
            Table.cell(value).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        func labels(_ a: AccountSummary) -> String {
            "account=\"\(label(a.name))\",integration=\"\(label(integrations[a.integrationId] ?? "?"))\",provider=\"\(label(providers[a.integrationId] ?? "?"))\""
        }
        var out = ""
        func gauge(_ name: String, _ help: String, _ value: (AccountSummary) -> Double?) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for a in accounts { if let v = value(a) { out += "\(name){\(labels(a))} \(Int(v.rounded()))\n" } }
        }
        gauge(
            "tokenvault_access_token_expiry_seconds",
            "Seconds until the account's access token lapses (negative: lapsed)."
        ) {
            $0.accessExpiresAt.map { $0.timeIntervalSince(now) }
        }
        gauge(
            "tokenvault_refresh_token_expiry_seconds",
            "Seconds until the account's refresh token lapses (negative: lapsed)."
        ) {
            $0.refreshExpiresAt.map { $0.timeIntervalSince(now) }
        }
        // Not the row's update time: that also moves when only the account's state changes (marked needs-reauth).
        gauge(
            "tokenvault_last_stored_seconds",
            "Seconds since the account's token pair was last stored (authorize, import or refresh)."
        ) {
            pairStoredAt[$0.name].map { now.timeIntervalSince($0) }
        }
        out +=
            "# HELP tokenvault_account_state The account's state (1 for the state it is in).\n# TYPE tokenvault_account_state gauge\n"
        for a in accounts {
            out += "tokenvault_account_state{\(labels(a)),state=\"\(DisplayState(a, now: now).rawValue)\"} 1\n"
        }
        return out
    }
}
