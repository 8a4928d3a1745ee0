import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The address of a Unix-domain socket at `path`; nil when the path does not fit `sun_path`.
func unixSocketAddress(_ path: String) -> sockaddr_un? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return address
}

/// A new stream socket connected to the Unix socket at `path`: its descriptor, or nil (errno says why).
public func connectUnixSocket(_ path: String) -> Int32? {
    guard var address = unixSocketAddress(path) else {
        errno = ENAMETOOLONG
        return nil
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard connected == 0 else {
        let saved = errno
        close(fd)
        errno = saved
        return nil
    }
    return fd
}

/// A stream socket bound to `path` (a file already there is replaced) and listening.
public func listenUnixSocket(_ path: String, backlog: Int32 = 256) throws -> Int32 {
    guard var address = unixSocketAddress(path) else { throw TestFailure("socket path too long: \(path)") }
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw TestFailure("cannot listen on \(path): \(reason)")
    }
    return fd
}
