import Foundation
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// Where an agent listens, and the checks on both ends of its socket.
public enum AgentSocket {
    /// The vault's identity, which names its agent's socket (``VaultLocation/agentIdentity()``): for a file, the
    /// device and inode of the real file, so two paths to one file share an agent and a file replaced under the
    /// same path is another vault; for a database, a digest of the location.
    public struct VaultIdentity: Equatable, Sendable, CustomStringConvertible {
        public var description: String

        public init(device: UInt64, inode: UInt64) { description = "\(device)-\(inode)" }

        init(_ description: String) { self.description = description }

        /// Nil for a file that does not exist.
        public static func of(_ location: VaultLocation) -> VaultIdentity? {
            location.agentIdentity().map(VaultIdentity.init)
        }

        /// The same, for a location as a store names it (``VaultLocation/init(_:)``).
        public static func of(location: String) -> VaultIdentity? { of(VaultLocation(location)) }
    }

    public enum Failure: Error, Equatable, LocalizedError {
        case unsafeDirectory(path: String, reason: String)
        case system(String)

        public var errorDescription: String? {
            switch self {
            case .unsafeDirectory(let path, let reason): "refusing the agent directory \(path): \(reason)"
            case .system(let message): message
            }
        }
    }

    /// `$XDG_RUNTIME_DIR/tokenvault` (a per-user tmpfs that logind empties at logout), else a per-uid directory
    /// under `/tmp`, else, when another user holds that one (anyone can make `/tmp/tokenvault-agent-UID` first),
    /// `~/.tokenvault-agent`, which no one else can make. Each is created 0700 and must be a real directory of ours
    /// that no one else can enter. The agent and every client make the same choice.
    public static func directory(environment: [String: String]) -> String {
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return runtime + "/tokenvault" }
        let shared = sharedDirectory
        if takenByAnother(shared) == nil { return shared }
        return home(environment) + "/.tokenvault-agent"
    }

    /// The per-uid directory under `/tmp`.
    public static var sharedDirectory: String { "/tmp/tokenvault-agent-\(geteuid())" }

    /// Why `dir` cannot be ours (another user's, a symbolic link, not a directory), or nil when it is ours or
    /// does not exist.
    public static func takenByAnother(_ dir: String) -> String? {
        var info = stat()
        guard lstat(dir, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return info.st_uid == geteuid() ? nil : "it belongs to uid \(info.st_uid)"
        case S_IFLNK: return "it is a symbolic link"
        default: return "it is not a directory"
        }
    }

    private static func home(_ environment: [String: String]) -> String {
        if let home = environment["HOME"], home.hasPrefix("/") { return home }
        if let entry = getpwuid(geteuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return NSHomeDirectory()
    }

    /// Why the agent's directory is not the per-uid one under `/tmp` although `XDG_RUNTIME_DIR` is unset (another
    /// user made it first), for `agent status`; nil when it is that one or the runtime directory.
    public static func fallbackReason(environment: [String: String]) -> String? {
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return nil }
        return takenByAnother(sharedDirectory).map { "\(sharedDirectory) is not usable: \($0)" }
    }

    public static func path(for identity: VaultIdentity, environment: [String: String]) -> String {
        directory(environment: environment) + "/agent-\(identity).sock"
    }

    /// Creates the directory if needed and checks it: not a symlink, ours, mode 0700 (or stricter).
    public static func checkDirectory(_ dir: String, create: Bool) throws {
        // Exactly 0700 when we make it, whatever the umask.
        if create, mkdir(dir, 0o700) == 0 { chmod(dir, 0o700) }
        var info = stat()
        guard lstat(dir, &info) == 0 else {
            throw Failure.system("cannot use the agent directory \(dir): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw Failure.unsafeDirectory(
                path: dir, reason: info.st_mode & S_IFMT == S_IFLNK ? "it is a symbolic link" : "it is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw Failure.unsafeDirectory(
                path: dir, reason: "it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))")
        }
        if info.st_mode & 0o777 != 0o700 {
            // Ours but open to others, or closed to us (a umask): make it exactly private, as the lock directory does.
            guard chmod(dir, 0o700) == 0 else {
                throw Failure.unsafeDirectory(
                    path: dir, reason: "it is open to others (mode \(String(info.st_mode & 0o777, radix: 8)))")
            }
        }
    }

    /// The uid of the process at the other end of a connected Unix socket (SO_PEERCRED), or nil.
    public static func peerUID(_ fd: Int32) -> uid_t? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, soPeerCred, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<PeerCredentials>.size)
        else { return nil }
        return credentials.uid
    }

    /// `struct ucred` of <sys/socket.h>, which Swift's Glibc module leaves out (it is behind _GNU_SOURCE).
    struct PeerCredentials {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
    }

    /// SO_PEERCRED: 17 on the Linux ABIs we build for (asm-generic/socket.h).
    static let soPeerCred: Int32 = 17

    /// Marks a descriptor close-on-exec (accept4 and pipe2 are behind _GNU_SOURCE too).
    static func closeOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
    }

    static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure.system("the agent socket path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    /// Writes all of `bytes`; false on any failure.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Reads exactly `count` bytes; nil on end of file, error or timeout.
    static func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = out[offset...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            offset += n
        }
        return out
    }

    /// One frame: a length within ``AgentProtocol/maxFrame`` and its bytes; nil for anything else.
    static func readFrame(_ fd: Int32) -> [UInt8]? {
        guard let header = readExactly(fd, 4) else { return nil }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length <= AgentProtocol.maxFrame else { return nil }
        return readExactly(fd, length)
    }

    static func writeFrame(_ fd: Int32, _ payload: [UInt8]) -> Bool {
        writeAll(fd, AgentProtocol.be32(UInt32(payload.count)) + payload)
    }

    /// A receive timeout, so a client that sends half a frame and stalls cannot hold a thread forever.
    static func setTimeouts(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
