import Foundation
import Testing

@testable import VaultAgent

#if canImport(Glibc)
    import Glibc
#endif

/// The token endpoint's HTTP server in process: real Unix sockets, its limits and the peer it reports.
@Suite struct TokenEndpointTests {
    @Test func requestHeadsAreParsedStrictly() throws {
        guard case .success(let ok) = TokenEndpoint.parse("GET /v1/accounts/a/token?x=1 HTTP/1.1\r\nHost: x") else {
            Issue.record("a plain GET was refused")
            return
        }
        #expect(ok.method == "GET" && ok.path == "/v1/accounts/a/token")
        for (head, status) in [
            ("GET /x", 400), ("GET x HTTP/1.1", 400), ("GET /x SPDY/3", 400), ("GET /x HTTP/1.1\r\nno colon", 400),
            ("GET /x HTTP/1.1\r\nContent-Length: 5", 413), ("GET /x HTTP/1.1\r\nTransfer-Encoding: chunked", 413),
        ] {
            guard case .failure(let refusal) = TokenEndpoint.parse(head) else {
                Issue.record("accepted: \(head)")
                continue
            }
            #expect(refusal.response?.status == status, "\(head)")
        }
    }

    final class Server: @unchecked Sendable {
        let dir: String
        let endpoint: TokenEndpoint

        init(limits: TokenEndpoint.Limits) throws {
            dir =
                FileManager.default.temporaryDirectory.appendingPathComponent(
                    "tv-endpoint-\(UUID().uuidString.prefix(8))"
                )
                .path
            try FileManager.default.createDirectory(
                atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let box = Box()
            endpoint = TokenEndpoint(socketPath: dir + "/t.sock", mode: 0o600, limits: limits) { request in
                box.record(request.peer)
                return .init(status: 200, body: "{\"path\":\"\(request.path)\"}")
            }
            self.box = box
            try endpoint.bind()
            let endpoint = endpoint
            Thread.detachNewThread { endpoint.run() }
        }
        let box: Box

        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var peers: [TokenEndpoint.Peer] = []
            func record(_ peer: TokenEndpoint.Peer) { lock.withLock { peers.append(peer) } }
        }

        func stop() {
            endpoint.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// Blocking client calls on a thread of their own: the server answers through a task on the cooperative pool,
    /// which a test blocking its thread would starve.
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    @Test func answersWithThePeersCredentialsAndClosesTheConnection() async throws {
        let server = try Server(limits: .init())
        defer { server.stop() }
        let socket = server.endpoint.socketPath
        let answer = try await offPool { try TokenEndpointClient.get(socketPath: socket, path: "/v1/accounts/a/token") }
        #expect(answer.status == 200 && answer.body.contains("/v1/accounts/a/token"))
        let peer = try #require(server.box.lock.withLock { server.box.peers.first })
        #expect(peer.uid == geteuid() && peer.pid == getpid() && peer.groups.contains(getegid()))
        var info = stat()
        #expect(lstat(server.endpoint.socketPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    /// Connections over the per-uid limit are answered 503 at once; the ones already open are not disturbed, and
    /// a stalled one is closed at the head's deadline.
    @Test func connectionsAreBoundedAndStalledOnesClosed() async throws {
        var limits = TokenEndpoint.Limits()
        limits.connectionsPerUID = 2
        limits.headerSeconds = 1
        let server = try Server(limits: limits)
        defer { server.stop() }
        let stalled = try (0..<2).map { _ in try connect(server.endpoint.socketPath) }
        defer { stalled.forEach { close($0) } }
        usleep(200_000)
        let socket = server.endpoint.socketPath
        let refused = try await offPool { try TokenEndpointClient.get(socketPath: socket, path: "/x") }
        #expect(refused.status == 503)
        // After the 1 s deadline the stalled ones are gone, and a new client is served.
        for fd in stalled {
            var byte: UInt8 = 0
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            #expect(recv(fd, &byte, 1, 0) == 0, "a stalled connection stayed open")
        }
        usleep(100_000)
        #expect(try await offPool { try TokenEndpointClient.get(socketPath: socket, path: "/x") }.status == 200)
        // Counted down by the connection's thread once it has closed: a moment after the client read the answer.
        for _ in 0..<100 where server.endpoint.openConnections != 0 { usleep(20_000) }
        #expect(server.endpoint.openConnections == 0)
    }

    func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = try AgentSocket.address(path)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard ok == 0 else { throw AgentSocket.Failure.system("connect") }
        _ = "GET /x HT".withCString { send(fd, $0, 9, Int32(MSG_NOSIGNAL)) }
        return fd
    }
}
