import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
@testable import WebexSandbox

/// Requests on a kept-alive connection are answered at once. Without `TCP_NODELAY` on the sandbox's sockets
/// (``NoDelay``), each answer's body waited for the client's delayed acknowledgement of its head: about 40 ms per
/// request after a connection's first, whatever the configured latency.
@Suite struct KeepAliveTests {
    @Test func keptAliveRequestsDoNotWaitForDelayedAcknowledgements() async throws {
        try await withSandbox { h in
            var seconds: [Double] = []
            for _ in 0..<12 {
                let start = ContinuousClock.now
                let reply = try await h.get("people/me", bearer: "not-a-token")
                #expect(reply.status == 401)
                let d = (ContinuousClock.now - start).components
                seconds.append(Double(d.seconds) + Double(d.attoseconds) / 1e18)
            }
            // The first opens the connection; the median of the rest is what a kept-alive request costs.
            let median = seconds.dropFirst().sorted()[seconds.count / 2]
            #expect(median < 0.02, "median \(Int(median * 1000)) ms per kept-alive request: \(seconds.map { Int($0 * 1000) })")
        }
    }
}
