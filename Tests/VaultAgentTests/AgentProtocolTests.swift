import Foundation
import Testing
import VaultCrypto

@testable import VaultAgent

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's wire protocol and its server, in process: real sockets in a private directory, a real key holder.
@Suite struct AgentProtocolTests {
    @Test func requestsAndAnswersRoundTripAndMalformedOnesAreRefused() {
        let r = AgentProtocol.Request(op: .open, label: "account/é", data: [1, 2, 3])
        #expect(AgentProtocol.Request.decode(r.encoded()) == r)
        let a = AgentProtocol.Answer(ok: false, data: Array("no".utf8))
        #expect(AgentProtocol.Answer.decode(a.encoded()) == a)
        var bad = r.encoded()
        bad[0] = 2  // another version
        #expect(AgentProtocol.Request.decode(bad) == nil)
        #expect(AgentProtocol.Request.decode(Array(r.encoded().dropLast())) == nil)  // data shorter than said
        #expect(AgentProtocol.Request.decode(r.encoded() + [0]) == nil)  // trailing bytes
        #expect(AgentProtocol.Request.decode([1, 99, 0, 0, 0, 0, 0, 0]) == nil)  // unknown op
        #expect(AgentProtocol.Request.decode([1, 1, 0xff, 0xff] + [UInt8](repeating: 65, count: 70_000)) == nil)  // label too long
        #expect(AgentProtocol.Request.decode([1, 1, 0, 2, 0xff, 0xfe, 0, 0, 0, 0]) == nil)  // label not UTF-8
    }

    final class Running: @unchecked Sendable {
        let dir: String
        let vault: String
        let server: AgentServer
        let keys = InProcessKeyHolder.generate()
        var reason: String?
        let done = DispatchSemaphore(value: 0)

        init(until: Date? = nil, idle: TimeInterval? = nil) throws {
            dir = NSTemporaryDirectory() + "tokenvault-agent-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            vault = dir + "/vault.db"
            _ = FileManager.default.createFile(atPath: vault, contents: Data("v".utf8))
            let identity = AgentSocket.VaultIdentity.of(location: vault)!
            server = AgentServer(
                keys: keys,
                settings: .init(
                    vaultPath: vault, identity: identity,
                    socketPath: dir + "/sock/agent.sock", until: until, idle: idle))
            try server.bind()
            Thread.detachNewThread { [self] in
                reason = server.run()
                done.signal()
            }
        }

        var socketPath: String { server.settings.socketPath }

        func waitForExit(seconds: Double = 20) -> String? {
            done.wait(timeout: .now() + seconds) == .success ? reason : nil
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test func aClientSealsOpensAndMACsThroughTheAgentAsTheKeyWould() throws {
        let agent = try Running()
        let client = try #require(try AgentClient.connect(socketPath: agent.socketPath))
        let sealed = try client.seal(SecretBytes(copying: Array("refresh token".utf8)), label: "account/a")
        // Sealed by the agent's key: the key itself opens it, and the label binds it.
        #expect(try agent.keys.open(sealed, label: "account/a").copyToString() == "refresh token")
        #expect(try client.open(sealed, label: "account/a").copyToString() == "refresh token")
        #expect(throws: VaultCryptoError.authenticationFailed) { try client.open(sealed, label: "account/b") }
        #expect(try client.mac([1, 2], label: "audit/chain") == agent.keys.mac([1, 2], label: "audit/chain"))
        #expect(throws: AgentClient.Failure.self) { try client.wrapMasterKey(under: SecretBytes(count: 32)) }
        #expect(throws: AgentClient.Failure.self) {
            try client.wrapMasterKey(toPublicKey: try BoxKeyPair.generate().publicKey)
        }
        let status = try client.status()
        #expect(status.vault == agent.vault && status.pid == Int(getpid()))
        #expect(abs(status.sinceDate.timeIntervalSinceNow) < 600)
        // The socket is private: 0600 in a 0700 directory.
        var info = stat()
        #expect(stat(agent.socketPath, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat(agent.dir + "/sock", &info) == 0 && info.st_mode & 0o777 == 0o700)
        try client.lockAgent()
        #expect(agent.waitForExit() == "it was locked")
        #expect(!FileManager.default.fileExists(atPath: agent.socketPath))
        #expect(try AgentClient.connect(socketPath: agent.socketPath) == nil)
    }

    @Test func garbageOversizedAndHalfFramesCloseOnlyThatConnection() throws {
        let agent = try Running()
        for payload: [UInt8] in [
            Array("GET / HTTP/1.1\r\n\r\n".utf8),  // not a frame: its "length" is huge
            [0x7f, 0xff, 0xff, 0xff],  // a 2 GiB frame announced
            AgentProtocol.be32(5) + [9, 9, 9, 9, 9],  // a frame that is no request
            [UInt8](repeating: 0xAA, count: 4096),
        ] {
            let fd = rawConnect(agent.socketPath)
            #expect(fd >= 0)
            _ = AgentSocket.writeAll(fd, payload)
            // The agent closes: reading gives end of file, not an answer.
            var byte: UInt8 = 0
            #expect(recv(fd, &byte, 1, 0) <= 0)
            close(fd)
        }
        // Fuzzed frames of every op and random bytes.
        for _ in 0..<200 {
            let fd = rawConnect(agent.socketPath)
            let body = (0..<Int.random(in: 0...64)).map { _ in UInt8.random(in: 0...255) }
            _ = AgentSocket.writeFrame(fd, [1, UInt8.random(in: 0...6)] + body)
            close(fd)
        }
        // Still serving.
        let client = try #require(try AgentClient.connect(socketPath: agent.socketPath))
        #expect(try client.mac([7], label: "x") == agent.keys.mac([7], label: "x"))
        try client.lockAgent()
        #expect(agent.waitForExit() == "it was locked")
    }

    @Test func itForgetsTheKeyWhenItsTimeRunsOutWhenIdleAndWhenTheVaultIsReplaced() throws {
        let timed = try Running(until: Date().addingTimeInterval(1))
        #expect(timed.waitForExit() == "its time ran out")
        let idle = try Running(idle: 1)
        #expect(idle.waitForExit() == "it was idle")

        let replaced = try Running()
        let client = try #require(try AgentClient.connect(socketPath: replaced.socketPath))
        #expect(throws: Never.self) { try client.mac([1], label: "x") }
        // Another file takes the vault's path (another inode): the agent must not serve it.
        let other = replaced.dir + "/other.db"
        _ = FileManager.default.createFile(atPath: other, contents: Data("w".utf8))
        #expect(rename(other, replaced.vault) == 0)
        #expect(throws: AgentClient.Failure.self) { try client.mac([1], label: "x") }
        #expect(replaced.waitForExit() == "the vault file was replaced or removed")
    }

    func rawConnect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = try! AgentSocket.address(path)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return ok == 0 ? fd : -1
    }
}
