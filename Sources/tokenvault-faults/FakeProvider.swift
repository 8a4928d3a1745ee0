import Foundation
import TokenVaultLab
#if canImport(Glibc)
import Glibc
#endif

/// A token endpoint on a raw loopback socket, for the faults the sandbox cannot make: a body cut off mid-way,
/// truncated JSON with honest framing, a 500, a stall. Each connection gets one answer chosen by `mode`.
final class FakeProvider: @unchecked Sendable {
    enum Mode: Sendable {
        /// 500 with a Webex-style error body and a trackingid header.
        case serverError
        /// Content-Length promises more than is sent, then the connection closes.
        case cutOffBody
        /// Complete HTTP framing around JSON that stops half-way.
        case truncatedJSON
        /// 200 with an empty body.
        case emptyBody
        /// Accepts the request and never answers (until `stop` or the given seconds pass).
        case stall(seconds: Double)
    }

    private let lock = NSLock()
    private var _mode: Mode = .serverError
    private var _requests = 0
    private var stopped = false
    private let listener: Int32
    let port: UInt16
    let trackingId = "FAKE_" + UUID().uuidString

    var url: String { "http://127.0.0.1:\(port)/v1" }
    var mode: Mode {
        get { lock.withLock { _mode } }
        set { lock.withLock { _mode = newValue } }
    }
    var requests: Int { lock.withLock { _requests } }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        guard listener >= 0 else { throw TestFailure("socket failed") }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { close(listener); throw TestFailure("bind/listen failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let fd = listener
        Thread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    return
                }
                Thread { self.serve(connection) }.start()
            }
        }.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard readRequest(fd) else { return }
        let mode: Mode = lock.withLock { _requests += 1; return _mode }
        switch mode {
        case .serverError:
            let body = #"{"message":"An unexpected error occurred.","errors":[{"description":"boom"}],"trackingId":"\#(trackingId)"}"#
            send(fd, head(500, "Internal Server Error", length: body.utf8.count, extra: "trackingid: \(trackingId)\r\n") + body)
        case .cutOffBody:
            let body = #"{"access_token":"fake-access-"#
            send(fd, head(200, "OK", length: 400) + body)
        case .truncatedJSON:
            let body = #"{"access_token":"fake-access-token","expires_in":12"#
            send(fd, head(200, "OK", length: body.utf8.count) + body)
        case .emptyBody:
            send(fd, head(200, "OK", length: 0))
        case .stall(let seconds):
            let end = Date().addingTimeInterval(seconds)
            while Date() < end && !isStopped { usleep(100_000) }
        }
    }

    private func head(_ status: Int, _ phrase: String, length: Int, extra: String = "") -> String {
        "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: application/json;charset=UTF-8\r\n\(extra)Content-Length: \(length)\r\nConnection: close\r\n\r\n"
    }

    private func send(_ fd: Int32, _ text: String) { writeAll(fd, text) }

    /// Reads the head and a Content-Length body; false if the client went away first.
    private func readRequest(_ fd: Int32) -> Bool {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return false }
            data += buffer[0..<n]
            let text = String(decoding: data, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let headLength = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound)
            var contentLength = 0
            for line in text[..<end.lowerBound].split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
            if data.count >= headLength + contentLength { return true }
        }
    }
}
