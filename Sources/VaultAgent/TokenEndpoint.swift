import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 server on a Unix socket: the token endpoint the agent, `tokenvault serve` and `exec --serve`
/// answer on, so that any language (and `curl --unix-socket`) can ask for an access token. It knows nothing of
/// vaults: each request is handed, with the peer's credentials (SO_PEERCRED, SO_PEERGROUPS), to `respond`.
///
/// One request per connection (`Connection: close`), GET only, no body. Limits keep one client from hurting
/// others: at most ``Limits/connections`` connections at once and ``Limits/connectionsPerUID`` per uid (more are
/// answered 503 and closed), a request head of at most ``Limits/headerBytes``, and a deadline for the whole head
/// (``Limits/headerSeconds``, the slowloris defence: a client that trickles bytes loses its own connection).
// @unchecked: `listener` and `wake` are set by bind() before run() reads them; the counts are behind a Mutex.
public final class TokenEndpoint: @unchecked Sendable {
    public struct Limits: Sendable {
        public var connections = 256
        public var connectionsPerUID = 128
        public var headerBytes = 8192
        public var headerSeconds: TimeInterval = 10
        public init() {}
    }

    /// Who is asking: the other end of the connection, as the kernel reports it when it connected.
    public struct Peer: Sendable, Equatable {
        public var uid: uid_t
        public var gid: gid_t
        public var pid: pid_t
        /// The supplementary groups (SO_PEERGROUPS) and the primary group.
        public var groups: [gid_t]

        public init(uid: uid_t, gid: gid_t, pid: pid_t, groups: [gid_t]) {
            self.uid = uid
            self.gid = gid
            self.pid = pid
            self.groups = groups
        }
    }

    public struct Request: Sendable {
        public var method: String
        /// The request target's path, percent-decoding left to the handler.
        public var path: String
        /// What follows `?` in the request target ("" when nothing does).
        public var query: String = ""
        public var peer: Peer
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: String
        public var contentType = "application/json"
        /// Further header fields (names and values without line breaks).
        public var headers: [(name: String, value: String)] = []

        public init(
            status: Int, body: String, contentType: String = "application/json",
            headers: [(name: String, value: String)] = []
        ) {
            self.status = status
            self.body = body
            self.contentType = contentType
            self.headers = headers
        }

        /// `{"error": message}` with `status`.
        public static func error(_ status: Int, _ message: String) -> Response {
            let data = (try? JSONSerialization.data(withJSONObject: ["error": message])) ?? Data("{}".utf8)
            return Response(status: status, body: String(decoding: data, as: UTF8.self))
        }
    }

    public let socketPath: String
    /// The socket file's mode: 0600 for the owner alone, 0666 when other users are to reach it (grants decide).
    public let mode: mode_t
    public let limits: Limits
    let respond: @Sendable (Request) async -> Response
    /// Tried first, on the connection's own thread: the answer when it needs no waiting on anything but the store
    /// (no hop to a task and back), or nil for `respond`.
    let respondNow: (@Sendable (Request) -> Response?)?
    private var listener: Int32 = -1
    private var wake: (read: Int32, write: Int32) = (-1, -1)
    private let open = Mutex<(total: Int, perUID: [uid_t: Int], stopped: Bool)>((0, [:], false))

    public init(
        socketPath: String, mode: mode_t, limits: Limits = Limits(),
        respondNow: (@Sendable (Request) -> Response?)? = nil,
        respond: @escaping @Sendable (Request) async -> Response
    ) {
        self.socketPath = socketPath
        self.mode = mode
        self.limits = limits
        self.respondNow = respondNow
        self.respond = respond
    }

    /// Binds the socket (a stale file at the path is replaced) with `mode`, set before it listens.
    public func bind() throws {
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentSocket.Failure.system("socket: \(String(cString: strerror(errno)))") }
        var address = try AgentSocket.address(socketPath)
        // Made 0600 by the umask while it is bound, then given its mode before anyone can connect.
        let old = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(old)
        guard bound == 0, chmod(socketPath, mode) == 0, listen(fd, 256) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AgentSocket.Failure.system("cannot listen on \(socketPath): \(reason)")
        }
        listener = fd
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw AgentSocket.Failure.system("pipe: \(String(cString: strerror(errno)))") }
        pipeFDs.forEach(AgentSocket.closeOnExec)
        wake = (pipeFDs[0], pipeFDs[1])
    }

    /// Accepts connections until ``stop()``; removes the socket before returning. Blocking: run it on a thread of
    /// its own (`Thread`, or `Task.detached` in a process that does nothing else).
    public func run() {
        signal(SIGPIPE, SIG_IGN)
        while !open.withLock({ $0.stopped }) {
            var fds = [
                pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&fds, 2, 500) > 0, fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            AgentSocket.closeOnExec(client)
            guard let peer = Self.peer(client) else {
                close(client)
                continue
            }
            let admitted = open.withLock { state -> Bool in
                guard state.total < limits.connections, state.perUID[peer.uid, default: 0] < limits.connectionsPerUID
                else { return false }
                state.total += 1
                state.perUID[peer.uid, default: 0] += 1
                return true
            }
            guard admitted else {
                AgentSocket.setTimeouts(client, seconds: 1)
                _ = AgentSocket.writeAll(client, Self.encode(.error(503, "too many connections; try again")))
                close(client)
                continue
            }
            AgentSocket.setTimeouts(client, seconds: Int(limits.headerSeconds.rounded(.up)))
            let thread = Thread { [self] in
                serve(client, peer: peer)
                close(client)
                open.withLock { state in
                    state.total -= 1
                    state.perUID[peer.uid, default: 1] -= 1
                    if state.perUID[peer.uid] == 0 { state.perUID[peer.uid] = nil }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        close(listener)
        unlink(socketPath)
    }

    /// Makes ``run()`` return (from any thread or a signal handler's flag check).
    public func stop() {
        open.withLock { $0.stopped = true }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// Connections being served now.
    public var openConnections: Int { open.withLock { $0.total } }

    private func serve(_ fd: Int32, peer: Peer) {
        let response: Response
        switch readHead(fd) {
        case .failure(let refusal):
            guard let answer = refusal.response else { return }  // closed or stalled: nothing to answer
            response = answer
        case .success(var request):
            request.peer = peer
            if request.method != "GET" {
                response = .error(405, "only GET is answered")
            } else {
                let asked = request
                response = respondNow?(asked) ?? Self.wait { await self.respond(asked) }
            }
        }
        _ = AgentSocket.writeAll(fd, Self.encode(response))
    }

    /// The request line and headers, within the size and time limits. `.failure(nil)`: the client closed, stalled
    /// or broke the limits so badly that no answer is owed.
    private func readHead(_ fd: Int32) -> Result<Request, Refusal> {
        let deadline = Date().addingTimeInterval(limits.headerSeconds)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            if let range = Self.find(end, in: buffer) {
                let head = String(decoding: buffer[..<range], as: UTF8.self)
                return Self.parse(head)
            }
            guard buffer.count <= limits.headerBytes else {
                return .failure(Refusal(.error(431, "request head too large")))
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return .failure(Refusal(nil)) }
            var tv = timeval(tv_sec: Int(left), tv_usec: Int((left - left.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .failure(Refusal(nil)) }
            buffer += chunk[0..<n]
        }
    }

    struct Refusal: Error {
        var response: Response?
        init(_ response: Response?) { self.response = response }
    }

    static func parse(_ head: String) -> Result<Request, Refusal> {
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else {
            return .failure(Refusal(.error(400, "not an HTTP/1.1 request")))
        }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else {
                return .failure(Refusal(.error(400, "malformed header line")))
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            // No body is read: a request that announces one is refused rather than left half-read.
            if name == "transfer-encoding" || (name == "content-length" && value != "0") {
                return .failure(Refusal(.error(413, "a request body is not accepted")))
            }
        }
        var path = String(parts[1])
        var query = ""
        if let mark = path.firstIndex(of: "?") {
            query = String(path[path.index(after: mark)...])
            path = String(path[..<mark])
        }
        return .success(
            Request(
                method: String(parts[0]), path: path, query: query, peer: Peer(uid: 0, gid: 0, pid: 0, groups: [])))
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }

    static let reasons: [Int: String] = [
        200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
        413: "Content Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
        502: "Bad Gateway", 503: "Service Unavailable",
    ]

    static func encode(_ response: Response) -> [UInt8] {
        let body = Array((response.body + "\n").utf8)
        let head =
            "HTTP/1.1 \(response.status) \(reasons[response.status] ?? "Status")\r\n"
            + "Content-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\n"
            + response.headers.map { "\($0.name): \($0.value.filter { $0 != "\r" && $0 != "\n" })\r\n" }.joined()
            + "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// Runs async work from this connection's own thread and waits for it.
    static func wait(_ work: @escaping @Sendable () async -> Response) -> Response {
        let result = Mutex<Response?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let response = await work()
            result.withLock { $0 = response }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 } ?? .error(500, "no answer")
    }

    /// SO_PEERCRED, and SO_PEERGROUPS (Linux 4.13) for the supplementary groups.
    static func peer(_ fd: Int32) -> Peer? {
        var credentials = AgentSocket.PeerCredentials()
        var length = socklen_t(MemoryLayout<AgentSocket.PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, AgentSocket.soPeerCred, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<AgentSocket.PeerCredentials>.size)
        else { return nil }
        var groups = [gid_t](repeating: 0, count: 256)
        var size = socklen_t(groups.count * MemoryLayout<gid_t>.size)
        var supplementary: [gid_t] = []
        if getsockopt(fd, SOL_SOCKET, soPeerGroups, &groups, &size) == 0 {
            supplementary = Array(groups.prefix(Int(size) / MemoryLayout<gid_t>.size))
        }
        return Peer(
            uid: credentials.uid, gid: credentials.gid, pid: credentials.pid,
            groups: Array(Set([credentials.gid] + supplementary)).sorted())
    }

    /// SO_PEERGROUPS: 59 on the Linux ABIs we build for (asm-generic/socket.h).
    static let soPeerGroups: Int32 = 59
}

/// The client side: one GET over a Unix socket (`tokenvault token` inside `exec --serve`, the tests).
public enum TokenEndpointClient {
    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        /// Header fields, names lowercased, in order.
        public var headers: [(name: String, value: String)] = []
    }

    /// - Parameter serverUID: when set, the server must run as this uid (SO_PEERCRED), or nothing is sent.
    public static func get(socketPath: String, path: String, timeout: Int = 60, serverUID: uid_t? = nil) throws
        -> Answer
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentSocket.Failure.system("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = try AgentSocket.address(socketPath)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            throw AgentSocket.Failure.system(
                "cannot connect to the token endpoint \(socketPath): \(String(cString: strerror(errno)))")
        }
        if let serverUID, AgentSocket.peerUID(fd) != serverUID {
            throw AgentSocket.Failure.system("the token endpoint \(socketPath) is not served by uid \(serverUID)")
        }
        AgentSocket.setTimeouts(fd, seconds: timeout)
        let request = "GET \(path) HTTP/1.1\r\nHost: tokenvault\r\nConnection: close\r\n\r\n"
        // A server over its connection limit answers 503 and closes before reading: its answer is still there to
        // read when the request could not be written.
        _ = AgentSocket.writeAll(fd, Array(request.utf8))
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while received.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            received += chunk[0..<n]
        }
        guard let split = TokenEndpoint.find(Array("\r\n\r\n".utf8), in: received) else {
            throw AgentSocket.Failure.system("the token endpoint \(socketPath) gave no HTTP answer")
        }
        let head = String(decoding: received[..<split], as: UTF8.self)
        let statusLine = head.prefix { $0 != "\r" }.split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw AgentSocket.Failure.system("the token endpoint \(socketPath) gave no HTTP status")
        }
        let headers = head.components(separatedBy: "\r\n").dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (
                line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            )
        }
        return Answer(
            status: status, body: String(decoding: received[(split + 4)...], as: UTF8.self),
            headers: headers.map { (name: $0.0, value: $0.1) })
    }
}
