import Foundation
import Testing

@testable import VaultOAuth

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A raw TCP client on its own thread (blocking socket calls stay off the Swift concurrency pool).
enum RawClient {
    /// Connects to the loopback address, sends `text`, returns everything read until the server closes.
    static func exchange(port: UInt16, ipv6: Bool = false, text: String) async throws -> String {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<String, Error>) in
            Thread {
                c.resume(
                    with: Result {
                        let fd = try connect(port: port, ipv6: ipv6)
                        defer { _ = close(fd) }
                        let bytes = Array(text.utf8)
                        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, 0) }
                        var out: [UInt8] = []
                        var buf = [UInt8](repeating: 0, count: 4096)
                        while true {
                            let n = recv(fd, &buf, buf.count, 0)
                            if n <= 0 { break }
                            out += buf[0..<n]
                        }
                        return String(decoding: out, as: UTF8.self)
                    })
            }.start()
        }
    }

    static func get(port: UInt16, _ target: String, ipv6: Bool = false) async throws -> String {
        try await exchange(
            port: port, ipv6: ipv6,
            text: "GET \(target) HTTP/1.1\r\nHost: localhost:\(port)\r\nUser-Agent: test\r\n\r\n")
    }

    struct ConnectFailed: Error { let errno: Int32 }

    static func connect(port: UInt16, ipv6: Bool = false) throws -> Int32 {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: 30, tv_usec: 0)  // generous: the machine may be loaded
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc: Int32
        if ipv6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            a.sin6_addr = in6addr_loopback
            rc = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            rc = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if rc != 0 {
            let e = errno
            _ = close(fd)
            throw ConnectFailed(errno: e)
        }
        return fd
    }
}

@Suite struct LoopbackListenerTests {
    func bound(_ host: String = "127.0.0.1") throws -> LoopbackListener {
        let l = LoopbackListener(host: host, port: 0)
        try l.bind()
        #expect(l.port != 0)
        return l
    }

    @Test func rightStateReturnsCodeAfterIgnoringFaviconAndIdleConnections() async throws {
        let l = try bound()
        let port = l.port
        let wait = Task { try await l.waitForCallback(expectedState: "S-1", path: "/callback", timeout: 60) }
        // A browser's speculative connection that never sends anything must not block the real request.
        let idle = try RawClient.connect(port: port)
        defer { _ = close(idle) }
        let favicon = try await RawClient.get(port: port, "/favicon.ico")
        #expect(favicon.hasPrefix("HTTP/1.1 400 "))
        let page = try await RawClient.get(port: port, "/callback?code=C%2Bde_1&state=S-1")
        #expect(page.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(page.contains("Authorized. You can close this tab"))
        #expect(page.contains("Cache-Control: no-store"))
        #expect(try await wait.value == "C+de_1")
        // Closed after one callback.
        #expect(throws: RawClient.ConnectFailed.self) { _ = try RawClient.connect(port: port) }
    }

    /// A stray request must not end the wait (one stray tab must not abort a login): a wrong state, an error
    /// without our state, another path all get 400, and the real callback still gets through afterwards.
    @Test func strayRequestsAreRefusedAndTheWaitGoesOn() async throws {
        let l = try bound()
        let events = EventLog()
        let wait = Task {
            try await l.waitForCallback(
                expectedState: "S-1", path: "/callback", timeout: 60, onEvent: { events.append($0) })
        }
        let forged = try await RawClient.get(port: l.port, "/callback?code=C&state=S-2")
        #expect(forged.hasPrefix("HTTP/1.1 400 "))
        #expect(forged.contains("refused"))
        #expect(!forged.contains("Authorized."))
        #expect(try await RawClient.get(port: l.port, "/callback?code=C").hasPrefix("HTTP/1.1 400 "))
        #expect(try await RawClient.get(port: l.port, "/callback?error=access_denied").hasPrefix("HTTP/1.1 400 "))
        #expect(
            try await RawClient.get(port: l.port, "/callback?error=access_denied&state=S-2").hasPrefix("HTTP/1.1 400 "))
        #expect(try await RawClient.get(port: l.port, "/elsewhere?code=C&state=S-1").hasPrefix("HTTP/1.1 400 "))
        #expect(try await RawClient.get(port: l.port, "/callback?code=Real&state=S-1").hasPrefix("HTTP/1.1 200 OK"))
        #expect(try await wait.value == "Real")
        #expect(events.all == [.wrongState, .wrongState, .wrongState, .wrongState])
    }

    /// The browser's command line carries only the single-use launch address: it sends the browser on once.
    @Test func launchAddressRedirectsOnce() async throws {
        let l = try bound()
        let events = EventLog()
        let target = URL(string: "https://idp.example/authorize?state=S-1&code_challenge=X")!
        let wait = Task {
            try await l.waitForCallback(
                expectedState: "S-1", path: "/callback", timeout: 60,
                launch: .init(path: "/tokenvault-L1", target: target), onEvent: { events.append($0) })
        }
        let first = try await RawClient.get(port: l.port, "/tokenvault-L1")
        #expect(first.hasPrefix("HTTP/1.1 303 "))
        #expect(first.contains("Location: \(target.absoluteString)\r\n"))
        let second = try await RawClient.get(port: l.port, "/tokenvault-L1")
        #expect(second.hasPrefix("HTTP/1.1 410 "))
        #expect(!second.contains("state=S-1"))
        #expect(try await RawClient.get(port: l.port, "/callback?code=C&state=S-1").contains("200 OK"))
        #expect(try await wait.value == "C")
        #expect(events.all == [.launchReused])
    }

    /// The owner of a loopback peer comes from the kernel's socket table; an orphaned socket (inode 0, its
    /// owner gone) or a missing one is not taken as ours.
    @Test func peerOwnerIsReadFromTheSocketTable() {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1111 1 0 100 0 0 10 0
               1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  4343        0 2222 1 0 20 4 30 10 -1
               2: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00000F9D 00000000     0        0 0 3 0
            """
        #expect(LoopbackListener.peerUID(table: table, peerLocal: "0100007F:C350", peerRemote: "0100007F:1F90") == 4343)
        #expect(LoopbackListener.peerUID(table: table, peerLocal: "0100007F:C351", peerRemote: "0100007F:1F90") == nil)
        #expect(LoopbackListener.peerUID(table: table, peerLocal: "0100007F:C352", peerRemote: "0100007F:1F90") == nil)
    }

    /// A connection of our own is recognised as ours through the live table (so the check cannot be a no-op
    /// that refuses everything, nor one that accepts everything: the other-user case is in EndToEndTests).
    @Test func ownConnectionIsSameUser() async throws {
        let l = try bound()
        let wait = Task { try await l.waitForCallback(expectedState: "S", path: "/cb", timeout: 60) }
        #expect(try await RawClient.get(port: l.port, "/cb?state=S&code=Mine").contains("200 OK"))
        #expect(try await wait.value == "Mine")
    }

    @Test func providerErrorIsReported() async throws {
        let l = try bound()
        let wait = Task { try await l.waitForCallback(expectedState: "S-1", path: "/cb", timeout: 60) }
        let page = try await RawClient.get(
            port: l.port, "/cb?error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E&state=S-1")
        #expect(page.hasPrefix("HTTP/1.1 400 "))
        #expect(page.contains("declined"))
        #expect(!page.contains("<script>"))  // provider text is escaped
        await #expect(throws: OAuthError.callbackError(code: "access_denied", description: "<script>x</script>")) {
            try await wait.value
        }
    }

    @Test func bareVisitKeepsWaiting() async throws {
        let l = try bound()
        let wait = Task { try await l.waitForCallback(expectedState: "S", path: "/cb", timeout: 60) }
        #expect(try await RawClient.get(port: l.port, "/cb").hasPrefix("HTTP/1.1 400 "))
        #expect(
            try await RawClient.exchange(port: l.port, text: "POST /cb?code=X&state=S HTTP/1.1\r\n\r\n").hasPrefix(
                "HTTP/1.1 405 "))
        #expect(try await RawClient.get(port: l.port, "/cb?state=S&code=OK").contains("200 OK"))
        #expect(try await wait.value == "OK")
    }

    @Test func timesOut() async throws {
        let l = try bound()
        let start = ContinuousClock.now
        await #expect(throws: OAuthError.callbackTimeout(seconds: 0.3)) {
            try await l.waitForCallback(expectedState: "S", path: "/cb", timeout: 0.3)
        }
        // Loose: on a loaded 2-core machine the pool's threads can be busy with other tests for 20 s at a time.
        #expect(ContinuousClock.now - start < .seconds(120))
    }

    @Test func cancellationEndsTheWait() async throws {
        let l = try bound()
        let wait = Task { try await l.waitForCallback(expectedState: "S", path: "/cb", timeout: 300) }
        try await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        wait.cancel()
        // CancellationError, not callbackTimeout: the cancellation ended it, whatever the machine's load.
        await #expect(throws: CancellationError.self) { try await wait.value }
        #expect(ContinuousClock.now - start < .seconds(200))
    }

    @Test func portInUseIsAClearError() throws {
        let first = try bound()
        let second = LoopbackListener(host: "127.0.0.1", port: first.port)
        let error = try #require(throws: OAuthError.self) { try second.bind() }
        #expect(error == .portInUse(host: "127.0.0.1", port: first.port))
        let text = try #require(error.errorDescription)
        #expect(text.contains("127.0.0.1:\(first.port) is already in use"))
        #expect(text.contains("--no-browser"))
        // "localhost" is bound as 127.0.0.1, so it collides too.
        #expect(throws: OAuthError.portInUse(host: "localhost", port: first.port)) {
            try LoopbackListener(host: "localhost", port: first.port).bind()
        }
    }

    @Test func onlyLoopbackHostsAreServed() {
        #expect(LoopbackListener.isLoopbackName("localhost"))
        #expect(LoopbackListener.isLoopbackName("127.0.0.1"))
        #expect(LoopbackListener.isLoopbackName("[::1]"))
        #expect(!LoopbackListener.isLoopbackName("0.0.0.0"))
        #expect(!LoopbackListener.isLoopbackName("192.168.1.2"))
        #expect(throws: OAuthError.self) { try LoopbackListener(host: "0.0.0.0", port: 0).bind() }
    }

    @Test func ipv6Loopback() async throws {
        let l = try bound("[::1]")
        let wait = Task { try await l.waitForCallback(expectedState: "S", path: "/cb", timeout: 60) }
        let page = try await RawClient.get(port: l.port, "/cb?code=V6&state=S", ipv6: true)
        #expect(page.contains("200 OK"))
        #expect(try await wait.value == "V6")
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [LoopbackListener.Event] = []
    func append(_ e: LoopbackListener.Event) { lock.withLock { events.append(e) } }
    var all: [LoopbackListener.Event] { lock.withLock { events } }
}
