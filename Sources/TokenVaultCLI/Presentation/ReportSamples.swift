import Foundation
import TokenVaultCore

/// Realistic `list --json` and `audit --json` reports for `make bench`, which measures `Format.json` against the
/// hand-written writer it replaced. tokenvault-bench builds the same values as the dictionaries that writer took
/// (`account(i)` and `.auditEntry(i)` say what each holds) and checks that both sides write the same
/// bytes before it times them.
@_spi(Bench) public enum ReportSamples {
    /// What account `i` of the sample holds (nil: left out of its report).
    public static func account(_ i: Int, now: Date) -> (
        name: String, email: String, displayName: String, orgId: String?,
        accessExpiresAt: Date, refreshExpiresAt: Date?, scopes: [String]
    ) {
        (
            "account-\(i)", "user\(i)@example.com", "User \(i)", i % 3 == 0 ? nil : "org-\(i % 7)",
            now.addingTimeInterval(1_209_599 - Double(i) - 0.25),
            i % 2 == 0 ? now.addingTimeInterval(7_776_000 - Double(i)) : nil,
            ["spark:all", "spark:kms"]
        )
    }

    /// What audit entry `i` of the sample holds.
    public static func auditEntry(_ i: Int, start: Date) -> (
        seq: Int64, at: Date, account: String, detail: String?,
        before: Date, after: Date
    ) {
        let at = start.addingTimeInterval(Double(i) * 61.123)
        return (
            Int64(i + 1), at, "account-\(i % 1000)",
            i % 10 == 0 ? "HTTP 400 \"invalid_grant\": the refresh token was refused" : nil,
            at.addingTimeInterval(-3600), at.addingTimeInterval(1_209_599)
        )
    }

    /// `list --json` of `n` sample accounts, written by `Format.json` with `timestamp`.
    public static func listJSON(accounts n: Int, now: Date, timestamp: @escaping @Sendable (Date) -> String)
        -> @Sendable () -> String
    {
        // Built in the call, as a command builds its report: the bench's other side builds its dictionaries too.
        return {
            Format.json(
                (0..<n).map { i in
                    let a = account(i, now: now)
                    return AccountReport(
                        account: a.name, integration: "bench", provider: "webex", state: "ok", email: a.email,
                        displayName: a.displayName, orgId: a.orgId, accessExpiresAt: a.accessExpiresAt,
                        refreshExpiresAt: a.refreshExpiresAt,
                        accessExpiresInSeconds: Int(a.accessExpiresAt.timeIntervalSince(now)),
                        refreshExpiresInSeconds: a.refreshExpiresAt.map { Int($0.timeIntervalSince(now)) },
                        scopes: a.scopes)
                }, timestamp: timestamp)
        }
    }

    /// `audit --json` of `n` sample entries (refreshes by refresh-all), written by `Format.json` with `timestamp`.
    public static func auditJSON(entries n: Int, start: Date, timestamp: @escaping @Sendable (Date) -> String)
        -> @Sendable () -> String
    {
        return {
            Format.json(
                (0..<n).map { i in
                    let e = auditEntry(i, start: start)
                    return AuditEntryReport(
                        seq: e.seq, at: e.at, account: e.account, event: "refreshed", trigger: "refresh-all",
                        outcome: "ok",
                        integration: "bench", accessExpiresBefore: e.before, accessExpiresAfter: e.after,
                        refreshExpiresBefore: e.before, refreshExpiresAfter: e.after, refreshTokenChanged: true,
                        detail: e.detail)
                }, timestamp: timestamp)
        }
    }
}
