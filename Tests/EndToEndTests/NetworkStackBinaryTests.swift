import Foundation
import ProviderSandbox
import Testing
import TokenVaultLab

extension OAuthBinaryTests {
    /// The network stack stays out of the commands that do not use it. The binary links neither
    /// libcurl nor Foundation's URLSession; libcurl is opened when the first request is made, and only then.
    @Suite struct NetworkStack {
        @Test func theBinaryLinksNeitherLibcurlNorFoundationNetworking() throws {
            let ldd = try #require(MachineTools.find("ldd"), "ldd is part of libc-bin")
            let linked = try runProcess(ldd, [tokenvaultBinary], environment: ["PATH": "/usr/bin:/bin"])
            #expect(linked.code == 0, "\(linked.err)")
            #expect(linked.out.contains("libsodium"), "ldd's output is not what this test expects:\n\(linked.out)")
            #expect(!linked.out.contains("libcurl"), "\(linked.out)")
            #expect(!linked.out.contains("FoundationNetworking"), "\(linked.out)")
        }

        /// The dynamic loader's own record (`LD_DEBUG=files`) of what each command opened.
        @Test func libcurlIsOpenedOnlyByCommandsThatMakeARequest() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                let trace: [String: String?] = ["LD_DEBUG": "files"]
                for quiet in [["--version"], ["list"], ["env", "alice"]] {
                    let r = try await s.run(quiet, environment: trace)
                    #expect(r.code == 0, "\(quiet): \(r.err.suffix(2000))")
                    #expect(r.err.contains("file=libsodium"), "\(quiet): LD_DEBUG had no effect")
                    #expect(!r.err.contains("libcurl"), "\(quiet) loaded libcurl")
                }
                let whoami = try await s.run(["whoami", "alice"], environment: trace)
                #expect(whoami.code == 0, "\(whoami.err.suffix(2000))")
                #expect(whoami.err.contains("file=libcurl.so.4"), "whoami made a request without libcurl?")
            }
        }

        /// Proxies come from the environment, as libcurl reads them: `http_proxy` sends the request to the proxy (in
        /// absolute form), and `no_proxy` naming the host sends it directly.
        @Test func proxiesComeFromTheEnvironment() async throws {
            try await SandboxWorkspace.with { s in
                try await s.importAccounts(["alice"])
                let seen = RequestLines()
                let proxy = try FakeHTTPServer { connection, request in
                    seen.append(String(request.head.split(separator: "\r\n").first ?? ""))
                    // 404: not retried, so the command ends at once.
                    connection.send(FakeHTTPServer.head(404, "Not Found", length: 2) + "{}")
                }
                defer { proxy.stop() }
                let cleared: [String: String?] = [
                    "no_proxy": nil, "NO_PROXY": nil, "https_proxy": nil, "all_proxy": nil, "ALL_PROXY": nil,
                ]
                let proxied = try await s.run(
                    ["whoami", "alice"], environment: cleared.merging(["http_proxy": proxy.baseURL]) { $1 })
                #expect(proxied.code != 0, "\(proxied.err)")
                #expect(seen.all == ["GET \(s.base.absoluteString)/people/me HTTP/1.1"], "\(seen.all)")
                let direct = try await s.run(
                    ["whoami", "alice"],
                    environment: cleared.merging(["http_proxy": proxy.baseURL, "no_proxy": "127.0.0.1"]) { $1 })
                #expect(direct.code == 0, "\(direct.err)")
                #expect(seen.all.count == 1)
                s.expectNoSecrets(proxied.err + direct.err)
            }
        }
    }
}

final class RequestLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
