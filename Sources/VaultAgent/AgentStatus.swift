import Foundation

/// The agent's account of itself, as its `status` answer carries it (times in whole seconds since 1970, which is
/// what the wire format has always held: older clients read the same keys).
public struct AgentStatus: Codable, Sendable, Equatable {
    public var vault: String
    public var pid: Int
    public var identity: String
    public var since: Int
    public var until: Int?
    public var idleSeconds: Int?
    public var refreshEverySeconds: Int?

    enum CodingKeys: String, CodingKey {
        case vault, pid, identity, since, until
        case idleSeconds = "idle_seconds"
        case refreshEverySeconds = "refresh_every_seconds"
    }

    public init(
        vault: String, pid: Int, identity: String, since: Int, until: Int? = nil, idleSeconds: Int? = nil,
        refreshEverySeconds: Int? = nil
    ) {
        self.vault = vault
        self.pid = pid
        self.identity = identity
        self.since = since
        self.until = until
        self.idleSeconds = idleSeconds
        self.refreshEverySeconds = refreshEverySeconds
    }

    public var sinceDate: Date { Date(timeIntervalSince1970: TimeInterval(since)) }
    public var untilDate: Date? { until.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
}
