import Foundation
import Spawning
import VaultCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// The agent: holds one vault's master key (in a ``KeyHolder``, in locked, guarded memory, in a process that cannot
/// be traced or dumped) and answers seal, open and MAC requests from processes of its own user on a Unix socket.
/// The key never leaves it.
///
/// It forgets the key (exits) at `until`, after `idle` without requests, on `lock`, on SIGTERM, SIGINT or
/// SIGHUP, and when the vault file is replaced (another inode at its path).
// @unchecked: the listening and wake-up descriptors are set by bind() before run() reads them; the rest is
// under `lock`.
public final class AgentServer: @unchecked Sendable {
    public struct Settings: Sendable {
        public var vaultPath: String
        public var identity: AgentSocket.VaultIdentity
        public var socketPath: String
        public var until: Date?
        public var idle: TimeInterval?
        /// Run this command (refresh-all) every `refreshEvery` seconds, ±10 %.
        public var refreshEvery: TimeInterval?
        public var refreshCommand: [String]
        /// The scheduled runs' `--notify` command, handed to each on a pipe (``HandOff``), never on its command line.
        public var refreshNotify: String?

        public init(
            vaultPath: String, identity: AgentSocket.VaultIdentity, socketPath: String, until: Date? = nil,
            idle: TimeInterval? = nil, refreshEvery: TimeInterval? = nil, refreshCommand: [String] = [],
            refreshNotify: String? = nil
        ) {
            self.vaultPath = vaultPath
            self.identity = identity
            self.socketPath = socketPath
            self.until = until
            self.idle = idle
            self.refreshEvery = refreshEvery
            self.refreshCommand = refreshCommand
            self.refreshNotify = refreshNotify
        }
    }

    let keys: any KeyHolder
    public let settings: Settings
    let started = Date()
    private let lock = NSLock()
    private var lastRequest = Date()
    private var stopReason: String?
    private var listener: Int32 = -1
    private var wake: (read: Int32, write: Int32) = (-1, -1)
    /// Connections from other users refused (SO_PEERCRED).
    public private(set) var refusedPeers = 0

    public init(keys: any KeyHolder, settings: Settings) {
        self.keys = keys
        self.settings = settings
    }

    /// Binds the socket (0600, in the checked directory); a stale socket of a dead agent is replaced, a live
    /// one is refused.
    public func bind() throws {
        let dir = URL(fileURLWithPath: settings.socketPath).deletingLastPathComponent().path
        try AgentSocket.checkDirectory(dir, create: true)
        // An agent just told to lock takes a moment to go: wait for it, briefly.
        let deadline = Date().addingTimeInterval(3)
        while AgentClient.isAlive(settings.socketPath) {
            guard Date() < deadline else {
                throw AgentSocket.Failure.system("an agent already holds this vault (\(settings.socketPath))")
            }
            usleep(50_000)
        }
        unlink(settings.socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentSocket.Failure.system("socket: \(String(cString: strerror(errno)))") }
        var address = try AgentSocket.address(settings.socketPath)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        // 0600 before it listens; no one else could reach it meanwhile (the directory is 0700). Not through the
        // umask, which is the whole process's.
        guard bound == 0, chmod(settings.socketPath, 0o600) == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AgentSocket.Failure.system("cannot listen on \(settings.socketPath): \(reason)")
        }
        listener = fd
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw AgentSocket.Failure.system("pipe: \(String(cString: strerror(errno)))") }
        pipeFDs.forEach(AgentSocket.closeOnExec)
        wake = (pipeFDs[0], pipeFDs[1])
        AgentSignals.install(socketPath: settings.socketPath)
    }

    /// Serves until a reason to stop; returns it. The socket is removed before returning.
    public func run() -> String {
        var nextRefresh = settings.refreshEvery.map { Date().addingTimeInterval(jittered($0)) }
        while true {
            if let reason = checkStop() {
                close(listener)
                unlink(settings.socketPath)
                return reason
            }
            if let due = nextRefresh, Date() >= due, let every = settings.refreshEvery {
                runRefresh()
                nextRefresh = Date().addingTimeInterval(jittered(every))
            }
            var fds = [
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, 500)
            guard ready > 0, fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            AgentSocket.closeOnExec(client)
            guard AgentSocket.peerUID(client) == geteuid() else {
                lock.withLock { refusedPeers += 1 }
                close(client)
                continue
            }
            AgentSocket.setTimeouts(client, seconds: 10)
            let thread = Thread { [self] in serve(client) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    func jittered(_ seconds: TimeInterval) -> TimeInterval { seconds * Double.random(in: 0.9...1.1) }

    private func checkStop() -> String? {
        let now = Date()
        if let reason = lock.withLock({ stopReason }) { return reason }
        if let until = settings.until, now >= until { return "its time ran out" }
        if let idle = settings.idle, now.timeIntervalSince(lock.withLock { lastRequest }) >= idle {
            return "it was idle"
        }
        if AgentSocket.VaultIdentity.of(location: settings.vaultPath) != settings.identity {
            return "the vault file was replaced or removed"
        }
        return nil
    }

    private func stop(_ reason: String) {
        lock.withLock { if stopReason == nil { stopReason = reason } }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// One client: frames until it closes, sends garbage, or stalls past the timeout.
    private func serve(_ fd: Int32) {
        defer { close(fd) }
        while let frame = AgentSocket.readFrame(fd) {
            guard let request = AgentProtocol.Request.decode(frame) else { return }
            let answer = handle(request)
            let written = AgentSocket.writeFrame(fd, answer.encoded())
            // Stopped only once the answer is out: the process may end as soon as the main loop sees it.
            if request.op == .lock {
                stop("it was locked")
                return
            }
            guard written else { return }
        }
    }

    func handle(_ request: AgentProtocol.Request) -> AgentProtocol.Answer {
        lock.withLock { lastRequest = Date() }
        // A vault replaced under its path is another vault: this key must not serve it.
        guard AgentSocket.VaultIdentity.of(location: settings.vaultPath) == settings.identity else {
            stop("the vault file was replaced or removed")
            return .refusal("the vault file was replaced; this agent has forgotten its key")
        }
        do {
            switch request.op {
            case .seal:
                let plaintext = SecretBytes(copying: request.data)
                return AgentProtocol.Answer(ok: true, data: try keys.seal(plaintext, label: request.label))
            case .open:
                let opened = try keys.open(request.data, label: request.label)
                return AgentProtocol.Answer(ok: true, data: opened.withUnsafeBytes { Array($0) })
            case .mac:
                return AgentProtocol.Answer(ok: true, data: try keys.mac(request.data, label: request.label))
            case .status:
                return AgentProtocol.Answer(ok: true, data: Array(statusJSON().utf8))
            case .lock:
                return AgentProtocol.Answer(ok: true, data: [])
            }
        } catch VaultCryptoError.authenticationFailed {
            return .refusal("authentication failed")
        } catch {
            return .refusal("\(error.localizedDescription)")
        }
    }

    func statusJSON() -> String {
        let status = AgentStatus(
            vault: settings.vaultPath, pid: Int(getpid()), identity: settings.identity.description,
            since: Int(started.timeIntervalSince1970), until: settings.until.map { Int($0.timeIntervalSince1970) },
            idleSeconds: settings.idle.map { Int($0) }, refreshEverySeconds: settings.refreshEvery.map { Int($0) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(status)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The scheduled refresh: the same `refresh-all` a cron job would run, as a child that uses this agent.
    private func runRefresh() {
        guard let program = settings.refreshCommand.first else { return }
        var command = settings.refreshCommand
        var descriptors: [(from: Int32, to: Int32)] = []
        // The notify command on descriptor 3 (read end kept above the standard ones, so that moving it to 3 is a
        // real dup2 that clears close-on-exec).
        var notifyPipe: (read: Int32, write: Int32) = (-1, -1)
        if settings.refreshNotify != nil {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { return }
            notifyPipe = (fcntl(fds[0], F_DUPFD_CLOEXEC, 10), fds[1])
            close(fds[0])
            AgentSocket.closeOnExec(notifyPipe.write)
            descriptors.append((from: notifyPipe.read, to: 3))
            command += ["--notify-fd", "3"]
        }
        defer { if notifyPipe.read >= 0 { close(notifyPipe.read) } }
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOKENVAULT_PASSPHRASE") }
        guard
            let child = try? SpawnedProcess.spawn(
                program, arguments: command, environment: environment, descriptors: descriptors)
        else {
            if notifyPipe.write >= 0 { close(notifyPipe.write) }
            return
        }
        let notify = settings.refreshNotify
        let notifyWrite = notifyPipe.write
        Thread.detachNewThread {
            if let notify, notifyWrite >= 0 {
                _ = HandOff.write(notify, to: notifyWrite)
                close(notifyWrite)
            }
            _ = child.waitForExit()
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP end the agent: the socket is removed and the process exits; its memory (the key
/// in guarded, locked pages) goes with it.
public enum AgentSignals {
    nonisolated(unsafe) static var socketPath: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) static var tokenSocketPath: UnsafeMutablePointer<CChar>?

    /// The agent's token endpoint, removed with its key socket on a signal.
    public static func alsoRemove(_ path: String) { tokenSocketPath = strdup(path) }

    static func install(socketPath path: String) {
        socketPath = strdup(path)
        signal(SIGPIPE, SIG_IGN)
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig) { _ in
                if let path = AgentSignals.socketPath { unlink(path) }
                if let path = AgentSignals.tokenSocketPath { unlink(path) }
                _exit(0)
            }
        }
    }
}
