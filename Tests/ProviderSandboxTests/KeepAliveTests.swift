import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// Requests on a kept-alive connection are answered at once. FlyingFox sends a response's head and body apart;
/// without `TCP_NODELAY` (``NoDelay``) the body waited for the client's delayed acknowledgement of the head, about
/// 40 ms per request after a connection's first (measured with curl), whatever the configured latency. Checked on
/// the option itself, which a loaded machine cannot blur as it blurs timings.
@Suite struct KeepAliveTests {
    @Test func acceptedConnectionsSendWithoutDelay() async throws {
        try await withSandbox { h in
            let port = try #require(h.base.port.map(UInt16.init))
            // A connection the sandbox has accepted and answered once; blocking socket calls stay off the pool.
            let result: (client: Int32, local: UInt16)? = await withCheckedContinuation { done in
                DispatchQueue.global().async { done.resume(returning: Self.connectAndAsk(port: port)) }
            }
            let (client, local) = try #require(result, "could not reach the sandbox")
            defer { close(client) }
            let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
            let serverSide = open.filter { Self.port($0, peer: true) == local && Self.port($0, peer: false) == port }
            #expect(serverSide.count == 1, "the sandbox's end of the connection was not found")
            for fd in serverSide {
                var on: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                #expect(getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, &size) == 0)
                #expect(on == 1, "TCP_NODELAY is off on the sandbox's connection")
            }
        }
    }

    /// Connects to 127.0.0.1:`port`, sends one request and reads the start of its answer; the client socket and its
    /// local port.
    static func connectAndAsk(port: UInt16) -> (Int32, UInt16)? {
        let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        // Only bounds a failure: under a full parallel test run the sandbox's first answer once took over 10 s.
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        _ = setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let request = Array("GET /v1/people/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 512)
        guard connected == 0, send(c, request, request.count, Int32(MSG_NOSIGNAL)) == request.count,
            recv(c, &buffer, buffer.count, 0) > 0, let local = Self.port(c, peer: false)
        else {
            close(c)
            return nil
        }
        return (c, local)
    }

    /// The local (or peer) port of an IPv4 socket; nil for anything else.
    static func port(_ fd: Int32, peer: Bool) -> UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard rc == 0, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return UInt16(bigEndian: address.sin_port)
    }
}
