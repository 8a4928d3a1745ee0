import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A temporary directory for one vault, the environment to drive the built `tokenvault` on it as a user would
/// (a short fixed `PATH`, `HOME` in the directory, `LANG=C.UTF-8`, where the vault is, and what the caller adds:
/// a passphrase or a passphrase file), and the runs of the binary there. The directory goes with this object.
public final class Workspace: @unchecked Sendable {
    /// Where the child finds its vault.
    public enum VaultLocation: Sendable {
        /// The default location under `XDG_DATA_HOME` (`DIR/data/tokenvault/vault.db`); `TOKENVAULT_VAULT` unset.
        case xdgDataHome
        /// `TOKENVAULT_VAULT=DIR/<path>`.
        case explicit(String)
    }

    public let dir: String
    public let vault: String
    /// The child's whole environment; nothing of this process's is passed on.
    public var environment: [String: String]
    /// The binary `run` and `start` drive.
    public let tokenvault: String

    /// Makes `TMPDIR/<prefix>-<random>`, or under `make test` `TMPDIR/<prefix>-<run>-<random>` of the same length
    /// (``TestRun``), with `mode` when given.
    public init(
        prefix: String, tokenvault: String, vault: VaultLocation, environment extra: [String: String],
        path: String = "/usr/local/bin:/usr/bin:/bin", mode: mode_t? = nil
    ) {
        dir = NSTemporaryDirectory() + TestRun.name(prefix, random: UUID().uuidString)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let mode { chmod(dir, mode) }
        self.tokenvault = tokenvault
        var environment = ["PATH": path, "HOME": dir, "LANG": "C.UTF-8"]
        switch vault {
        case .xdgDataHome:
            self.vault = dir + "/data/tokenvault/vault.db"
            environment["XDG_DATA_HOME"] = dir + "/data"
        case .explicit(let relative):
            self.vault = dir + "/" + relative
            environment["TOKENVAULT_VAULT"] = self.vault
        }
        self.environment = environment.merging(extra) { $1 }
    }

    deinit { remove() }

    /// Removes the directory and everything in it (again at deinit).
    public func remove() { try? FileManager.default.removeItem(atPath: dir) }

    /// The directory that holds the vault file.
    public var vaultDirectory: String { URL(fileURLWithPath: vault).deletingLastPathComponent().path }
    /// The per-account refresh locks next to the vault.
    public var locksDirectory: String { vault + ".locks" }

    /// `environment` with `extra` laid over it (a nil value removes the variable).
    public func environment(adding extra: [String: String?]) -> [String: String] {
        var env = environment
        for (key, value) in extra { env[key] = value }
        return env
    }

    /// Runs the binary to completion (see ``runProcess``).
    @discardableResult
    public func tokenvault(
        _ arguments: [String], stdin: String = "", environment extra: [String: String?] = [:],
        timeout: TimeInterval = 60
    ) throws -> ProcessResult {
        try runProcess(tokenvault, arguments, environment: environment(adding: extra), stdin: stdin, timeout: timeout)
    }

    /// Starts the binary in the background (see ``ChildProcess``).
    public func start(
        _ arguments: [String], stdin: String? = nil, environment extra: [String: String?] = [:],
        newSession: Bool = false
    ) throws -> ChildProcess {
        try ChildProcess(
            tokenvault, arguments, environment: environment(adding: extra), stdin: stdin, newSession: newSession)
    }

    /// Writes `content` to `DIR/name` with `mode`; returns the path.
    @discardableResult
    public func write(_ name: String, _ content: String, mode: Int = 0o600) throws -> String {
        let path = dir + "/" + name
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
        return path
    }
}
