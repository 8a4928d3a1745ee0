import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Receives the browser's redirect on a loopback address (RFC 8252 §7.3) with plain POSIX sockets.
///
/// Two steps on purpose: ``bind()`` first, so a port already in use is reported before the browser opens
/// (and the redirect cannot land on another program), then ``waitForCallback(expectedState:path:timeout:)``.
/// Only the loopback address is bound, never 0.0.0.0. One callback with the right state ends it; the socket is
/// closed afterwards. Browsers open speculative connections that send nothing and fetch `/favicon.ico`, so
/// several connections are read side by side and other paths get a 404 without ending the wait.
///
/// Its mutable state (the listening descriptor and its port) is behind a mutex.
public final class LoopbackListener: Sendable {
    /// The host as given (`localhost`, `127.0.0.1`, `::1`).
    public let host: String
    private let requestedPort: UInt16
    private struct Listening {
        var fd: Int32 = -1
        var boundPort: UInt16 = 0
    }
    private let listening = Mutex(Listening())

    /// Longest request head accepted; a callback URL is far shorter.
    static let maxRequestBytes = 16 * 1024
    /// Connections read side by side; more are dropped oldest first.
    static let maxConnections = 16

    /// - Parameters:
    ///   - host: a loopback name: `localhost` (bound as 127.0.0.1), `127.0.0.1` (or another 127/8 address), `::1`.
    ///   - port: the registered redirect port; 0 picks a free one (tests).
    public init(host: String, port: UInt16) {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        self.host = h
        self.requestedPort = port
    }

    deinit { closeSocket() }

    /// Whether `name` is a loopback host tokenvault will listen on.
    public static func isLoopbackName(_ name: String) -> Bool {
        var h = name.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "::1" { return true }
        var addr = in_addr()
        return inet_pton(AF_INET, h, &addr) == 1 && UInt32(bigEndian: addr.s_addr) >> 24 == 127
    }

    /// The port actually bound (differs from the requested one only when 0 was requested); 0 before ``bind()``.
    public var port: UInt16 { listening.withLock { $0.boundPort } }

    /// Binds and listens on the loopback address. Call before opening the browser.
    /// - Throws: ``OAuthError/portInUse(host:port:)`` when another program holds the port,
    ///   ``OAuthError/listenerFailed(_:)`` for other socket errors.
    public func bind() throws {
        try listening.withLock { listening in
            guard listening.fd < 0 else { return }
            let shown = host.contains(":") ? "[\(host)]:\(requestedPort)" : "\(host):\(requestedPort)"
            guard Self.isLoopbackName(host) else {
                throw OAuthError.listenerFailed(
                    "\(host) is not a loopback address; only localhost, 127.0.0.1 and [::1] are served")
            }
            let v6 = host == "::1"
            let s = socket(v6 ? AF_INET6 : AF_INET, Self.streamType, 0)
            guard s >= 0 else { throw OAuthError.listenerFailed("socket() failed: \(Self.errnoText())") }
            var ok = false
            defer { if !ok { _ = sysClose(s) } }

            var one: Int32 = 1
            // Lets a quick second `authorize` rebind while the last connection sits in TIME_WAIT; on Linux it
            // does not allow stealing a port another program is listening on.
            _ = setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let rc: Int32
            if v6 {
                _ = setsockopt(s, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
                var a = sockaddr_in6()
                a.sin6_family = sa_family_t(AF_INET6)
                a.sin6_port = requestedPort.bigEndian
                a.sin6_addr = in6addr_loopback
                rc = withUnsafePointer(to: &a) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sysBind(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            } else {
                var a = sockaddr_in()
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = requestedPort.bigEndian
                // localhost is bound as 127.0.0.1: resolving it could yield a non-loopback address on a bad hosts file.
                _ = inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &a.sin_addr)
                rc = withUnsafePointer(to: &a) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sysBind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if rc != 0 {
                let e = errno
                if e == EADDRINUSE { throw OAuthError.portInUse(host: host, port: requestedPort) }
                if e == EACCES {
                    throw OAuthError.listenerFailed(
                        "permission denied binding \(shown); ports below 1024 need root, so register a redirect URI with a port above 1024 such as http://localhost:8080/callback"
                    )
                }
                if e == EADDRNOTAVAIL {
                    throw OAuthError.listenerFailed(
                        "\(shown) is not available on this machine (is IPv6 loopback disabled?)")
                }
                throw OAuthError.listenerFailed("bind \(shown) failed: \(Self.errnoText(e))")
            }
            guard listen(s, 16) == 0 else {
                let e = errno
                if e == EADDRINUSE { throw OAuthError.portInUse(host: host, port: requestedPort) }
                throw OAuthError.listenerFailed("listen on \(shown) failed: \(Self.errnoText(e))")
            }
            let flags = fcntl(s, F_GETFL, 0)
            _ = fcntl(s, F_SETFL, flags | O_NONBLOCK)
            listening.boundPort = Self.localPort(s) ?? requestedPort
            listening.fd = s
            ok = true
        }
    }

    /// A single-use address on the listener that sends the browser on to the authorization URL, so that the
    /// browser's command line carries only `http://127.0.0.1:PORT/<random>`, never `state` or the PKCE challenge
    /// (every local user can read `/proc/PID/cmdline`).
    public struct Launch: Sendable {
        public var path: String
        public var target: URL
        public init(path: String, target: URL) {
            self.path = path
            self.target = target
        }
    }

    /// What the listener refused or noticed while waiting, for the terminal (never contains a code or a state).
    public enum Event: Sendable, Equatable {
        /// A request from a connection owned by another local user (uid), or whose owner could not be found.
        case otherUser(uid: UInt32?)
        /// A callback whose `state` is not the one sent (or has none): a stray tab, a forged link, a web page.
        case wrongState
        /// The single-use launch address was asked for again.
        case launchReused
    }

    /// Waits for the browser's redirect to `path` and returns the authorization code.
    ///
    /// The right state and a code → answers "Authorized. You can close this tab.", closes, returns the code.
    /// `error=…` with the right state → answers a page naming it and throws ``OAuthError/callbackError(code:description:)``.
    /// Everything else keeps the wait going, so that a stray request from any program or web page cannot end it:
    /// a wrong or missing state, another path → 400; a connection owned by another local user → 403 (Linux:
    /// the peer socket's owner in `/proc/net/tcp{,6}`); the `launch` path → 303 to the authorization URL, once.
    /// Runs on its own thread so the blocking `poll` never ties up a Swift concurrency thread; cancelling the
    /// task ends the wait within a fraction of a second.
    /// - Throws: ``OAuthError/callbackTimeout(seconds:)`` when nothing valid arrives within `timeout` seconds.
    public func waitForCallback(
        expectedState: String, path: String, timeout: Double, launch: Launch? = nil,
        onEvent: (@Sendable (Event) -> Void)? = nil
    ) async throws -> String {
        try bind()
        let cancelled = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, Error>) in
                let thread = Thread { [self] in
                    var session = Session(expectedState: expectedState, path: path, launch: launch, onEvent: onEvent)
                    let result = Result { try self.serve(&session, timeout: timeout, cancelled: cancelled) }
                    self.closeSocket()
                    continuation.resume(with: result)
                }
                thread.name = "tokenvault-callback"
                thread.start()
            }
        } onCancel: {
            cancelled.set()
        }
    }

    /// What one wait expects and has seen.
    private struct Session {
        var expectedState: String
        var path: String
        var launch: Launch?
        var onEvent: (@Sendable (Event) -> Void)?
        var launched = false
    }

    /// Closes the listening socket (also done automatically after a callback and on deinit).
    public func close() { closeSocket() }

    private func closeSocket() {
        listening.withLock { listening in
            if listening.fd >= 0 { _ = sysClose(listening.fd) }
            listening.fd = -1
        }
    }

    // MARK: The serving loop (runs on its own thread)

    private enum Outcome {
        case keepWaiting
        case code(String)
        case failure(OAuthError)
    }

    private func serve(_ session: inout Session, timeout: Double, cancelled: CancelFlag) throws -> String {
        let listenFD = listening.withLock { $0.fd }
        guard listenFD >= 0 else { throw OAuthError.listenerFailed("the listener was closed") }
        let deadline = Date().addingTimeInterval(timeout)
        var clients: [(fd: Int32, buffer: [UInt8], owner: PeerOwner)] = []
        defer { for c in clients { _ = sysClose(c.fd) } }
        var chunk = [UInt8](repeating: 0, count: 4096)

        while true {
            if cancelled.isSet { throw CancellationError() }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { throw OAuthError.callbackTimeout(seconds: timeout) }

            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            fds += clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let slice = Int32(min(remaining, 0.2) * 1000) + 1
            let n = poll(&fds, nfds_t(fds.count), slice)
            if n < 0 {
                if errno == EINTR { continue }
                throw OAuthError.listenerFailed("poll failed: \(Self.errnoText())")
            }
            if n == 0 { continue }

            // Read ready clients first (their indexes match fds[1...] before any new accept).
            var finished: Set<Int32> = []
            for (i, p) in fds.enumerated().dropFirst() where p.revents != 0 {
                let index = i - 1
                let got = recv(p.fd, &chunk, chunk.count, 0)
                if got <= 0 {
                    finished.insert(p.fd)
                    continue
                }
                clients[index].buffer += chunk[0..<got]
                let buffer = clients[index].buffer
                guard let head = Self.requestHead(buffer) else {
                    if buffer.count > Self.maxRequestBytes {
                        Self.respond(
                            p.fd, status: 431, title: "Request too large",
                            message: "This is tokenvault's authorization listener.")
                        finished.insert(p.fd)
                    }
                    continue
                }
                finished.insert(p.fd)
                switch handle(head: head, fd: p.fd, owner: clients[index].owner, session: &session) {
                case .keepWaiting: break
                case .code(let code): return code
                case .failure(let error): throw error
                }
            }
            for f in finished { _ = sysClose(f) }
            clients.removeAll { finished.contains($0.fd) }

            if fds[0].revents & Int16(POLLIN) != 0 {
                while true {
                    let c = accept(listenFD, nil, nil)
                    if c < 0 { break }  // EAGAIN: no more pending connections
                    // Not inherited by a browser or command started while we wait.
                    _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                    var one: Int32 = 1
                    #if canImport(Darwin)
                        _ = setsockopt(c, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
                    #endif
                    _ = one
                    // Who owns the other end, looked up at once while the peer's socket is certainly open.
                    clients.append((c, [], Self.peerOwner(c)))
                    if clients.count > Self.maxConnections {
                        _ = sysClose(clients.removeFirst().fd)
                    }
                }
            }
        }
    }

    /// The request line and headers, once complete.
    static func requestHead(_ buffer: [UInt8]) -> String? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i..<(i + 4)].elementsEqual(terminator) {
            return String(decoding: buffer[0..<i], as: UTF8.self)
        }
        return nil
    }

    private func handle(head: String, fd client: Int32, owner: PeerOwner, session: inout Session) -> Outcome {
        let page = "This is tokenvault's authorization listener."
        if owner != .sameUser {
            let uid: UInt32? =
                switch owner {
                case .otherUser(let uid): uid
                case .unknown(let uid): uid
                case .sameUser: nil
                }
            // Another local user's program (or one we cannot place) must not deliver a code, nor learn where the
            // browser is sent: refuse before looking at the request at all.
            Self.respond(
                client, status: 403, title: "Refused",
                message: "This request came from a program of another user on this machine, so tokenvault refused it.")
            session.onEvent?(.otherUser(uid: uid))
            return .keepWaiting
        }
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2 else {
            Self.respond(client, status: 400, title: "Bad request", message: page)
            return .keepWaiting
        }
        var target = String(parts[1])
        // Absolute-form targets (proxies) carry scheme and host; keep the path and query.
        if let r = target.range(of: "://"), let slash = target[r.upperBound...].firstIndex(of: "/") {
            target = String(target[slash...])
        }
        let requestPath = String(target.prefix { $0 != "?" && $0 != "#" })
        let query =
            target.firstIndex(of: "?").map { String(target[target.index(after: $0)...].prefix { $0 != "#" }) } ?? ""

        if let launch = session.launch, requestPath == launch.path, parts[0] == "GET" {
            guard !session.launched else {
                Self.respond(
                    client, status: 410, title: "Already used",
                    message:
                        "This link works once and was already opened. If that was not you, run tokenvault authorize again."
                )
                session.onEvent?(.launchReused)
                return .keepWaiting
            }
            session.launched = true
            Self.respond(
                client, status: 303, title: "Continue", message: "Continue to the provider's sign-in page.",
                location: launch.target.absoluteString)
            return .keepWaiting
        }
        guard requestPath == session.path else {
            Self.respond(client, status: 400, title: "Not the callback", message: page)
            return .keepWaiting
        }
        guard parts[0] == "GET" else {
            Self.respond(client, status: 405, title: "Method not allowed", message: page)
            return .keepWaiting
        }
        let params = CallbackParameters(query: query)
        guard params.isCallback else {
            Self.respond(
                client, status: 400, title: "Waiting for authorization",
                message: "This address receives the provider's redirect; there is nothing to see here yet.")
            return .keepWaiting
        }
        // RFC 6749 §10.12: only a callback with our exact state counts, an error included; anything else is a
        // stray tab, a forged link or a web page poking at the port, and the wait goes on.
        guard let state = params.state, CallbackParameters.constantTimeEqual(state, session.expectedState) else {
            Self.respond(
                client, status: 400, title: "Refused",
                message:
                    "This authorization response does not belong to the request tokenvault is waiting for, so it was refused."
            )
            session.onEvent?(.wrongState)
            return .keepWaiting
        }
        do {
            let code = try params.code(expectedState: session.expectedState)
            Self.respond(
                client, status: 200, title: "Authorized",
                message: "Authorized. You can close this tab and return to the terminal.")
            return .code(code)
        } catch let error as OAuthError {
            let message =
                "Authorization failed: " + (error.errorDescription ?? "unknown error") + ". You can close this tab."
            Self.respond(client, status: 400, title: "Authorization failed", message: message)
            return .failure(error)
        } catch {
            return .failure(.listenerFailed(String(describing: error)))
        }
    }

    static func respond(_ client: Int32, status: Int, title: String, message: String, location: String? = nil) {
        let reason =
            [
                200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed",
                410: "Gone", 431: "Request Header Fields Too Large",
            ][status] ?? "Error"
        let html = """
            <!doctype html><html><head><meta charset="utf-8"><title>tokenvault: \(escape(title))</title></head>\
            <body style="font-family: sans-serif; margin: 3em"><h1>\(escape(title))</h1><p>\(escape(message))</p></body></html>
            """
        let body = Array(html.utf8)
        // Referrer-Policy: the page's URL holds the code; no-store: do not keep it in the browser cache.
        let head =
            "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.count)\r\n"
            + (location.map { "Location: \($0)\r\n" } ?? "")
            + "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        var sent = 0
        // The socket is blocking and the page is a few hundred bytes: one send normally suffices.
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + sent, $0.count - sent, sendFlags) }
            if n <= 0 { break }
            sent += n
        }
    }

    /// Provider text (error_description) is reflected into the page: escape it. Also used for the page that
    /// sends the browser on (an attribute value).
    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func localPort(_ s: Int32) -> UInt16? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) }
        }
        guard rc == 0 else { return nil }
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: storage) { raw -> UInt16 in
            if family == AF_INET6 { return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port) }
            return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    #if os(Linux)
        static let streamType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    #else
        static let streamType = SOCK_STREAM
    #endif
}

#if os(Linux)
    private let sendFlags = Int32(MSG_NOSIGNAL)
#else
    private let sendFlags: Int32 = 0
#endif

private func sysBind(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t) -> Int32 {
    #if canImport(Glibc)
        return Glibc.bind(fd, addr, len)
    #else
        return Darwin.bind(fd, addr, len)
    #endif
}

func sysClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
        return Glibc.close(fd)
    #else
        return Darwin.close(fd)
    #endif
}

/// Set from the cancellation handler, read by the serving thread.
private final class CancelFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
