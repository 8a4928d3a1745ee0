import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Sets `TCP_NODELAY` on the sandbox's listening socket, so every connection it accepts inherits it (Linux copies
/// the option to accepted sockets).
///
/// Why: FlyingFox writes a response's head and its body in two sends, and does not set the option. With Nagle's
/// algorithm on, the body then waits on a kept-alive connection until the client acknowledges the head, which
/// Linux delays by up to 40 ms: every request after a connection's first took about 44 ms at zero latency (curl
/// against the sandbox), which made refresh-all (and the Python script beside it) about twice the network ideal in
/// `make bench`. Real providers do not stall like this. FlyingFox does not expose its listening socket, so it is
/// found among this process's descriptors by its address.
enum NoDelay {
    static func setOnListener(port: UInt16) {
        let open =
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where isListener(fd, port: port) {
            var on: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    private static func isListener(_ fd: Int32, port: UInt16) -> Bool {
        var listening: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else { return false }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return named == 0 && address.sin_family == sa_family_t(AF_INET) && UInt16(bigEndian: address.sin_port) == port
    }
}
