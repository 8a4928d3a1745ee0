import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Text handed to a child on a pipe instead of its command line, which every local user can read in
/// `/proc/PID/cmdline` for as long as the child runs: `unlock --notify CMD` (a webhook URL is a secret) to the
/// agent, and the agent's own to each scheduled `refresh-all`. The way `unlock` hands the master key over.
public enum HandOff {
    /// The most a handed-over text may hold.
    public static let limit = 64 * 1024

    /// Writes all of `text` to `fd` (the writer's end of the child's pipe); false on any failure.
    public static func write(_ text: String, to fd: Int32) -> Bool {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Reads `fd` to its end: the text, or nil when it is longer than ``limit``, not UTF-8, or cannot be read.
    public static func read(from fd: Int32) -> String? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += buffer[0..<n]
            if bytes.count > limit { return nil }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
