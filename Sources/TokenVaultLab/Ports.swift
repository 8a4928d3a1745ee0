import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP socket bound to 127.0.0.1 on a port the kernel picks (not yet listening), and that port; -1 and 0 when
/// no socket could be made. The caller owns the descriptor: `listen` on it for a server that never answers, or
/// keep it bound to hold a port that refuses connections.
public func boundLoopbackSocket(reuseAddress: Bool = false) -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return (-1, 0) }
    if reuseAddress {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    guard
        withUnsafeMutablePointer(
            to: &address,
            {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }) == 0
    else {
        close(fd)
        return (-1, 0)
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// A free loopback port for redirect URIs and for addresses nothing listens on: one outside the kernel's
/// ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), checked free by binding it, and never handed out
/// twice in this process.
///
/// Why not a port the kernel picks (bind to 0, read, release): that port goes back to the ephemeral pool, and
/// under load the next outgoing connection of any test can take it as its source port before the test binds it
/// ("127.0.0.1:PORT is already in use"). Ports below the ephemeral range are only ever taken explicitly.
public func freePort() -> UInt16 {
    PortPool.shared.take()
}

final class PortPool: @unchecked Sendable {
    static let shared = PortPool()
    private let lock = NSLock()
    private var handedOut: Set<UInt16> = []
    private let range: ClosedRange<UInt16>

    init() {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let low =
            text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { UInt16($0) } ?? 32768
        // Below the ephemeral range and above the well-known and commonly configured ports.
        let top = max(low, 12_001) - 1
        range = 12_000...top
    }

    func take() -> UInt16 {
        for _ in 0..<1000 {
            let port = UInt16.random(in: range)
            let fresh = lock.withLock { handedOut.insert(port).inserted }
            guard fresh, Self.isFree(port) else { continue }
            return port
        }
        // A machine with no free port there: fall back to one the kernel picks.
        let (fd, port) = boundLoopbackSocket()
        if fd >= 0 { close(fd) }
        return port
    }

    static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}
