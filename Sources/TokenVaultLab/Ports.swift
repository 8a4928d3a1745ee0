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
    guard withUnsafeMutablePointer(to: &address, {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }) == 0 else { close(fd); return (-1, 0) }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// A free loopback port (bound, read, released), for redirect URIs and for addresses nothing listens on.
public func freePort() -> UInt16 {
    let (fd, port) = boundLoopbackSocket()
    if fd >= 0 { close(fd) }
    return port
}
