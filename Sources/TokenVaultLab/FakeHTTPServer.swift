import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 server on a raw loopback socket (127.0.0.1, a port the kernel picks), for the answers a
/// well-behaved server cannot give: a body cut off mid-way, truncated JSON with honest framing, a stall. Every
/// connection is served on a thread of its own: the request (head and Content-Length body) is read, counted,
/// and handed with the connection to `answer`, which writes whatever bytes it likes; the connection is then closed.
public final class FakeHTTPServer: @unchecked Sendable {
    /// One request as it arrived.
    public struct Request: Sendable {
        /// The request line and headers, without the blank line that ends them.
        public var head: String
        public var body: [UInt8]
        /// The request line's method and target, e.g. `POST` and `/v1/access_token`.
        public var method: Substring { head.prefix { $0 != " " } }
        public var target: Substring { head.split(separator: " ", maxSplits: 2).dropFirst().first ?? "" }
    }

    /// The client side of one connection, for `answer` to write to.
    public struct Connection: Sendable {
        public let fd: Int32
        /// Writes all of `text` (stopping early if the client went away).
        public func send(_ text: String) { writeAll(fd, text) }
    }

    public let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var requestCount = 0
    private var stopped = false

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// Requests read completely so far (a client that went away before its request was whole is not counted).
    public var requests: Int { lock.withLock { requestCount } }
    /// True once `stop` was called: a stalling `answer` should give up.
    public var isStopped: Bool { lock.withLock { stopped } }

    /// Starts listening at once. `receiveTimeout` bounds each read of a request, so a client that never sends
    /// one cannot hold a thread for ever.
    public init(receiveTimeout: Int = 10, answer: @escaping @Sendable (Connection, Request) -> Void) throws {
        let (listener, port) = boundLoopbackSocket(reuseAddress: true)
        guard listener >= 0 else { throw TestFailure("socket/bind failed") }
        guard listen(listener, 64) == 0 else {
            close(listener)
            throw TestFailure("bind/listen failed")
        }
        self.listener = listener
        self.port = port
        Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    return
                }
                Thread { self.serve(connection, receiveTimeout: receiveTimeout, answer: answer) }.start()
            }
        }.start()
    }

    /// Stops accepting connections; answers under way see `isStopped`.
    public func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// A response head with a JSON content type, `Content-Length: length` (which the body may belie) and
    /// `Connection: close`; `extra` is inserted as is (each header ending in CRLF).
    public static func head(_ status: Int, _ phrase: String, length: Int, extra: String = "") -> String {
        "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: application/json;charset=UTF-8\r\n\(extra)Content-Length: \(length)\r\nConnection: close\r\n\r\n"
    }

    private func serve(_ fd: Int32, receiveTimeout: Int, answer: (Connection, Request) -> Void) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = Self.readRequest(fd) else { return }
        lock.withLock { requestCount += 1 }
        answer(Connection(fd: fd), request)
    }

    /// Reads the head and a Content-Length body; nil if the client went away first.
    private static func readRequest(_ fd: Int32) -> Request? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return nil }
            data += buffer[0..<n]
            let text = String(decoding: data, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let headLength = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound)
            var contentLength = 0
            for line in text[..<end.lowerBound].split(separator: "\r\n")
            where line.lowercased().hasPrefix("content-length:") {
                contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
            if data.count >= headLength + contentLength {
                return Request(
                    head: String(text[..<end.lowerBound]),
                    body: Array(data[headLength..<min(data.count, headLength + contentLength)]))
            }
        }
    }
}
