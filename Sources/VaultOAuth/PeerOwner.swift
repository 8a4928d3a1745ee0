import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which local user owns the other end of a loopback connection.
///
/// Every local user can connect to 127.0.0.1, and every local user can read a process's command line, so the
/// callback listener must tell the user's own browser from another user's program. On Linux the kernel lists
/// every TCP socket with its owner's uid in `/proc/net/tcp` and `/proc/net/tcp6`: the peer's socket is the one
/// whose local address is our connection's remote address and whose remote address is our local address.
enum PeerOwner: Sendable, Equatable {
    case sameUser
    case otherUser(uid: UInt32)
    /// Not found (the peer closed already, or no /proc): refused, since it cannot be shown to be ours.
    case unknown(uid: UInt32?)
}

extension LoopbackListener {
    /// The owner of the peer of the accepted connection `client`, compared with this process's real uid.
    static func peerOwner(_ client: Int32) -> PeerOwner {
        #if os(Linux)
            guard let local = socketAddress(client, peer: false), let remote = socketAddress(client, peer: true) else {
                return .unknown(uid: nil)
            }
            let table = local.isIPv6 ? "/proc/net/tcp6" : "/proc/net/tcp"
            guard
                let uid = peerUID(
                    table: readProcFile(table),
                    peerLocal: remote.procForm, peerRemote: local.procForm)
            else { return .unknown(uid: nil) }
            return uid == getuid() ? .sameUser : .otherUser(uid: uid)
        #else
            return .sameUser  // no /proc/net: nothing to check against (tokenvault's supported platform is Linux)
        #endif
    }

    /// Finds the socket `peerLocal` → `peerRemote` (addresses in /proc's `HEXADDR:HEXPORT` form) in a
    /// `/proc/net/tcp{,6}` listing and returns its owner's uid. Orphaned sockets (inode 0, owner no longer
    /// known) do not count.
    static func peerUID(table: String, peerLocal: String, peerRemote: String) -> UInt32? {
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 10, fields[1] == peerLocal, fields[2] == peerRemote else { continue }
            guard fields[9] != "0", let uid = UInt32(fields[7]) else { return nil }
            return uid
        }
        return nil
    }

    /// /proc files report a size of 0, so they are read until end of file rather than by their size.
    static func readProcFile(_ path: String) -> String {
        #if canImport(Glibc)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        #else
            let fd = Darwin.open(path, O_RDONLY | O_CLOEXEC)
        #endif
        guard fd >= 0 else { return "" }
        defer { _ = sysClose(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 64 << 20 {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    struct ProcAddress {
        var isIPv6: Bool
        /// As /proc/net/tcp prints it: the address as host-order 32-bit words in hex, a colon, the port in hex.
        var procForm: String
    }

    static func socketAddress(_ fd: Int32, peer: Bool) -> ProcAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(fd, $0, &length) : getsockname(fd, $0, &length)
            }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: storage) { raw -> ProcAddress? in
            func word(_ offset: Int) -> String {
                String(format: "%08X", raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            }
            switch Int32(storage.ss_family) {
            case AF_INET:
                let a = raw.load(as: sockaddr_in.self)
                let address = String(format: "%08X", a.sin_addr.s_addr)
                return ProcAddress(
                    isIPv6: false, procForm: "\(address):\(String(format: "%04X", UInt16(bigEndian: a.sin_port)))")
            case AF_INET6:
                let a = raw.load(as: sockaddr_in6.self)
                let base = MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)!
                let address = (0..<4).map { word(base + 4 * $0) }.joined()
                return ProcAddress(
                    isIPv6: true, procForm: "\(address):\(String(format: "%04X", UInt16(bigEndian: a.sin6_port)))")
            default:
                return nil
            }
        }
    }
}
