import Foundation
import TokenVaultLab

/// A token endpoint on TokenVaultLab's raw loopback server, for the faults the sandbox cannot make: a body cut off
/// mid-way, truncated JSON with honest framing, a 500, a stall. Each connection gets one answer chosen by `mode`.
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
    private var server: FakeHTTPServer!
    let trackingId = "FAKE_" + UUID().uuidString

    var url: String { server.baseURL + "/v1" }
    var mode: Mode {
        get { lock.withLock { _mode } }
        set { lock.withLock { _mode = newValue } }
    }
    var requests: Int { server.requests }

    init() throws {
        server = try FakeHTTPServer { [weak self] connection, _ in self?.answer(connection) }
    }

    func stop() { server.stop() }

    private func answer(_ connection: FakeHTTPServer.Connection) {
        switch mode {
        case .serverError:
            let body =
                #"{"message":"An unexpected error occurred.","errors":[{"description":"boom"}],"trackingId":"\#(trackingId)"}"#
            connection.send(
                FakeHTTPServer.head(
                    500, "Internal Server Error", length: body.utf8.count, extra: "trackingid: \(trackingId)\r\n")
                    + body)
        case .cutOffBody:
            let body = #"{"access_token":"fake-access-"#
            connection.send(FakeHTTPServer.head(200, "OK", length: 400) + body)
        case .truncatedJSON:
            let body = #"{"access_token":"fake-access-token","expires_in":12"#
            connection.send(FakeHTTPServer.head(200, "OK", length: body.utf8.count) + body)
        case .emptyBody:
            connection.send(FakeHTTPServer.head(200, "OK", length: 0))
        case .stall(let seconds):
            let end = Date().addingTimeInterval(seconds)
            while Date() < end && !server.isStopped { usleep(100_000) }
        }
    }
}
