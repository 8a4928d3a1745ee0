import CCurl
import Foundation
import Testing

@testable import VaultOAuth

/// An HTTPS server on 127.0.0.1 with a self-signed certificate made at test time: `openssl req -x509` for the
/// certificate and python3's `ssl` + `http.server` to serve it. Both are real TLS, nothing mocked.
final class SelfSignedHTTPSServer {
    let port: UInt16
    let directory: URL
    private let process: Process

    /// Nil, with the reason, when openssl or python3 is missing.
    static func start() throws -> Result<SelfSignedHTTPSServer, SkipReason> {
        guard let openssl = executable("openssl") else { return .failure(SkipReason("openssl is not installed")) }
        guard let python = executable("python3") else { return .failure(SkipReason("python3 is not installed")) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tv-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        let req = Process()
        req.executableURL = URL(fileURLWithPath: openssl)
        req.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ]
        req.standardOutput = FileHandle.nullDevice
        req.standardError = FileHandle.nullDevice
        try req.run()
        req.waitUntilExit()
        guard req.terminationStatus == 0 else { throw SkipReason("openssl req exited \(req.terminationStatus)") }

        let script = """
            import http.server, ssl, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = b'{"access_token":"AT","expires_in":60}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                do_POST = do_GET
                def log_message(self, *args):
                    pass
            server = http.server.HTTPServer(("127.0.0.1", 0), H)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            server.socket = context.wrap_socket(server.socket, server_side=True)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, cert, key]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        // The first line is the port; python prints it once the socket listens.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        guard let port = UInt16(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            p.terminate()
            throw SkipReason("the python3 HTTPS server did not start")
        }
        return .success(SelfSignedHTTPSServer(port: port, directory: dir, process: p))
    }

    private init(port: UInt16, directory: URL, process: Process) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(at: directory)
    }

    static func executable(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// Skips with a printed reason, except under `CI=true`, where a missing tool must fail the run.
func skipOrFail(_ reason: SkipReason, sourceLocation: SourceLocation = #_sourceLocation) {
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("cannot run under CI: \(reason)", sourceLocation: sourceLocation)
    } else {
        print("skipped: \(reason)")
    }
}

@Suite struct HostileTLSTests {
    /// A self-signed certificate was once reported as "connection lost" and retried: a TLS failure is said as such
    /// and not retried.
    @Test func selfSignedCertificateIsATLSFailureAndNotRetried() async throws {
        let server: SelfSignedHTTPSServer
        switch try SelfSignedHTTPSServer.start() {
        case .success(let s): server = s
        case .failure(let reason):
            skipOrFail(reason)
            return
        }
        let url = URL(string: "https://127.0.0.1:\(server.port)/v1/access_token")!
        let e = try #require(
            await oauthError {
                _ = try await CurlTransport(version: "1", timeout: 10).send(HTTPRequest(method: "GET", url: url))
            })
        #expect(e == .transport(.tls, host: "127.0.0.1:\(server.port)"))
        #expect(!e.retryable)
        let text = e.errorDescription ?? ""
        #expect(text.contains("certificate"), "\(text)")
        #expect(text.contains("127.0.0.1:\(server.port)"))
        withExtendedLifetime(server) {}
    }

    /// libcurl's certificate and handshake results are TLS failures (not retried); a handshake cut off by the peer,
    /// and resets and short bodies after it, are lost connections (retried).
    @Test func libcurlResultsAreClassified() {
        let host = "x.example"
        func mapped(_ code: CURLcode, _ message: String) -> OAuthError {
            CurlTransport.map(code, message: message, host: host, limit: 1)
        }
        for (code, message) in [
            (CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem: certificate has expired"),
            (
                CURLE_PEER_FAILED_VERIFICATION,
                "SSL: no alternative certificate subject name matches target host name 'x.example'"
            ),
            (CURLE_SSL_CONNECT_ERROR, "OpenSSL/3.0.19: error:0A00042E:SSL routines::tlsv1 alert protocol version"),
            (CURLE_SSL_CACERT_BADFILE, "error setting certificate file: /nonexistent"),
            (CURLE_SSL_CERTPROBLEM, ""),
        ] {
            #expect(mapped(code, message) == .transport(.tls, host: host), "\(code) \(message)")
            #expect(!mapped(code, message).retryable)
        }
        for (code, message) in [
            (CURLE_SSL_CONNECT_ERROR, "OpenSSL SSL_connect: Connection reset by peer in connection to x.example:443"),
            (CURLE_SSL_CONNECT_ERROR, "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to x.example:443"),
            (CURLE_PARTIAL_FILE, "transfer closed with 120 bytes remaining to read"),
            (CURLE_RECV_ERROR, "OpenSSL SSL_read: Connection reset by peer, errno 104"),
            (CURLE_RECV_ERROR, "Recv failure: Connection reset by peer"),
            (CURLE_GOT_NOTHING, "Empty reply from server"),
        ] {
            #expect(mapped(code, message) == .transport(.connectionLost, host: host), "\(code) \(message)")
            #expect(mapped(code, message).retryable)
        }
    }
}
