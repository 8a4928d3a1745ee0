import CCurl
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One libcurl multi handle and the one thread that drives it, for every request of the process.
///
/// A request is handed over under a lock and the thread woken (`curl_multi_wakeup`); the thread runs every transfer
/// in `curl_multi_poll` and resumes each caller's continuation from there. So a request costs one hand-over each
/// way, where URLSession took several queue hops per request and per piece of body. The multi handle keeps
/// connections alive per host between requests (`refresh-all` reuses them), and finished easy handles are reset
/// and reused.
// @unchecked: owns libcurl's multi handle and easy handles (C pointers) that only its own thread touches.
final class CurlMulti: @unchecked Sendable {
    /// Loaded at the first request: libcurl and the thread exist only in processes that use the network.
    static let shared: Result<CurlMulti, CurlLibrary.LoadError> = Result { () throws(CurlLibrary.LoadError) in
        try CurlMulti(CurlLibrary.load())
    }

    private let curl: CurlLibrary
    private let multi: UnsafeMutableRawPointer

    private let lock = NSLock()
    private var incoming: [CurlTransfer] = []
    private var cancelled: [CurlTransfer] = []

    // The thread's own.
    private var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var spare: [UnsafeMutableRawPointer] = []

    private init(_ curl: CurlLibrary) throws(CurlLibrary.LoadError) {
        guard let multi = curl.multiInit() else {
            throw CurlLibrary.LoadError(description: "libcurl could not create a multi handle")
        }
        self.curl = curl
        self.multi = multi
        let thread = Thread { [self] in run() }
        thread.name = "tokenvault-curl"
        thread.start()
    }

    /// Runs one transfer; cancelling the calling task ends it at once (its connection is closed).
    func perform(_ transfer: CurlTransfer) async throws -> HTTPResponse {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.wait(continuation)
                lock.withLock { incoming.append(transfer) }
                _ = curl.multiWakeup(multi)
            }
        } onCancel: {
            transfer.finish(.failure(CancellationError()))
            lock.withLock { cancelled.append(transfer) }
            _ = curl.multiWakeup(multi)
        }
    }

    private func run() {
        // OpenSSL may write to a socket the peer has closed; SIGPIPE must not end the process. Blocked on this
        // thread (and the resolver threads libcurl starts from it), where it stays pending and harmless.
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, nil)

        var active: Int32 = 0
        var left: Int32 = 0
        while true {
            let (new, gone) = lock.withLock {
                defer {
                    incoming.removeAll(keepingCapacity: true)
                    cancelled.removeAll(keepingCapacity: true)
                }
                return (incoming, cancelled)
            }
            for transfer in gone {
                if let easy = transfer.easy { release(easy) }
            }
            for transfer in new where !transfer.isFinished {
                guard let easy = spare.popLast() ?? curl.easyInit() else {
                    transfer.finish(
                        .failure(OAuthError.transport(.other("libcurl could not start a request"), host: transfer.host))
                    )
                    continue
                }
                transfer.configure(easy, curl)
                running[easy] = transfer
                _ = curl.multiAddHandle(multi, easy)
            }
            _ = curl.multiPerform(multi, &active)
            while let message = curl.multiInfoRead(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = running[easy]
                else { continue }
                let outcome = transfer.completed(
                    message.pointee.data.result, status: curl.info(easy, CURLINFO_RESPONSE_CODE))
                release(easy)
                transfer.finish(outcome)
            }
            // libcurl shortens the wait to its own next timer (timeouts, retries of a connect); idle, it sleeps until
            // woken by a new request.
            _ = curl.multiPoll(multi, nil, 0, running.isEmpty ? 60_000 : 1_000, nil)
        }
    }

    /// Takes a handle out of the multi and keeps it for the next request. Reset before the transfer goes: the handle
    /// points at the transfer's error buffer and header list until then.
    private func release(_ easy: UnsafeMutableRawPointer) {
        _ = curl.multiRemoveHandle(multi, easy)
        curl.easyReset(easy)
        running.removeValue(forKey: easy)?.detach(curl)
        if spare.count < 64 { spare.append(easy) } else { curl.easyCleanup(easy) }
    }
}
