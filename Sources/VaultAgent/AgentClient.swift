import Foundation
import Synchronization
import VaultCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// A ``KeyHolder`` whose key is in an agent: every seal, open and MAC is one request on the agent's socket.
/// The connection is checked to lead to a process of our own uid before anything is sent.
public final class AgentClient: KeyHolder {
    public enum Failure: Error, LocalizedError, Equatable {
        case gone(String)
        case refused(String)

        public var errorDescription: String? {
            switch self {
            case .gone(let why): "the agent is gone (\(why)); run 'tokenvault unlock' again or give the passphrase"
            case .refused(let why): "the agent refused: \(why)"
            }
        }
    }

    public let socketPath: String
    /// The connection's descriptor, -1 after it broke (the next call connects again); one request at a time.
    private let connection: Mutex<Int32>

    private init(socketPath: String, fd: Int32) {
        self.socketPath = socketPath
        connection = Mutex(fd)
    }

    deinit { connection.withLock { if $0 >= 0 { close($0) } } }

    /// A client of the agent at `socketPath`, or nil when none answers there (no socket, a stale one).
    /// - Throws: when the socket's directory is unsafe or the listener is not of our uid.
    public static func connect(socketPath: String) throws -> AgentClient? {
        let dir = URL(fileURLWithPath: socketPath).deletingLastPathComponent().path
        var info = stat()
        guard lstat(dir, &info) == 0 else { return nil }
        try AgentSocket.checkDirectory(dir, create: false)
        guard let fd = try open(socketPath) else { return nil }
        return AgentClient(socketPath: socketPath, fd: fd)
    }

    /// Whether an agent answers at the path (for `bind`, which must not steal a live agent's socket).
    static func isAlive(_ path: String) -> Bool {
        guard let fd = try? open(path) else { return false }
        close(fd)
        return true
    }

    private static func open(_ path: String) throws -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = try AgentSocket.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        // The other end must be us: a socket another user managed to put there gets nothing.
        guard AgentSocket.peerUID(fd) == geteuid() else {
            close(fd)
            throw Failure.refused("the process at \(path) is not yours")
        }
        AgentSocket.setTimeouts(fd, seconds: 30)
        return fd
    }

    func call(_ request: AgentProtocol.Request) throws -> [UInt8] {
        try connection.withLock { fd in
            if fd < 0 {
                guard let reopened = try Self.open(socketPath) else { throw Failure.gone("no agent at \(socketPath)") }
                fd = reopened
            }
            guard AgentSocket.writeFrame(fd, request.encoded()), let frame = AgentSocket.readFrame(fd),
                let answer = AgentProtocol.Answer.decode(frame)
            else {
                close(fd)
                fd = -1
                throw Failure.gone("the connection broke")
            }
            guard answer.ok else {
                let message = String(decoding: answer.data, as: UTF8.self)
                if message == "authentication failed" { throw VaultCryptoError.authenticationFailed }
                throw Failure.refused(message)
            }
            return answer.data
        }
    }

    public func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8] {
        try call(.init(op: .seal, label: label, data: plaintext.withUnsafeBytes { Array($0) }))
    }

    public func open(_ sealed: [UInt8], label: String) throws -> SecretBytes {
        var bytes = try call(.init(op: .open, label: label, data: sealed))
        defer { _ = bytes.withUnsafeMutableBytes { $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        return SecretBytes(copying: bytes)
    }

    public func mac(_ message: [UInt8], label: String) throws -> [UInt8] {
        try call(.init(op: .mac, label: label, data: message))
    }

    /// The master key is not for export: `passwd` works from the passphrase, and ends the agent.
    public func wrapMasterKey(under passphraseKey: SecretBytes) throws -> [UInt8] {
        throw Failure.refused(
            "the agent does not hand out its key; change the passphrase with 'tokenvault passwd' (it ends the agent)")
    }

    /// Nor to a key slot: `keys add` and `keys rotate` work from a passphrase, and end the agent.
    public func wrapMasterKey(toPublicKey publicKey: [UInt8]) throws -> [UInt8] {
        throw Failure.refused(
            "the agent does not hand out its key; 'tokenvault keys' works from a passphrase (it ends the agent)")
    }

    /// The agent's own account of itself.
    public func status() throws -> AgentStatus {
        let data = try call(.init(op: .status))
        do {
            return try JSONDecoder().decode(AgentStatus.self, from: Data(data))
        } catch {
            throw Failure.refused("the agent's status could not be read (\(error))")
        }
    }

    /// Tells the agent to forget the key and exit.
    public func lockAgent() throws {
        _ = try call(.init(op: .lock))
    }
}
