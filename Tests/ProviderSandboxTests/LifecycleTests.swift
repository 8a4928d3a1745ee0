import Foundation
import Testing

@testable import ProviderSandbox

@Suite struct LifecycleTests {
    @Test func aBusyPortIsAClearError() async throws {
        let first = ProviderSandbox(configuration: testConfiguration())
        let url = try await first.start()
        let port = try #require(url.port.flatMap { UInt16(exactly: $0) })
        let second = ProviderSandbox(configuration: testConfiguration())
        await #expect(throws: SandboxError.self) { _ = try await second.start(port: port) }
        await #expect(throws: SandboxError.alreadyStarted) { _ = try await first.start() }
        await first.stop()
        #expect(await first.baseURL == nil)
    }

    @Test func stopsAndStartsAgain() async throws {
        let sandbox = ProviderSandbox(configuration: testConfiguration())
        _ = try await sandbox.start()
        await sandbox.stop()
        let url = try await sandbox.start()
        #expect(url.absoluteString.hasPrefix("http://127.0.0.1:"))
        await sandbox.stop()
    }

    @Test func clockAdvancesFromAFrozenInstant() async {
        let sandbox = ProviderSandbox(configuration: testConfiguration())
        let instant = Date(timeIntervalSince1970: 2_000_000_000)
        await sandbox.setNow(instant)
        await sandbox.advanceClock(by: 90)
        #expect(await sandbox.now == instant.addingTimeInterval(90))
    }

    @Test func clockStandsStillUnlessStepped() async throws {
        let sandbox = ProviderSandbox(configuration: testConfiguration())
        let first = await sandbox.now
        try await Task.sleep(for: .milliseconds(20))
        #expect(await sandbox.now == first)
    }

    @Test func realTimeClockRunsFromWhereItWasSet() async throws {
        let sandbox = ProviderSandbox(configuration: testConfiguration(), clockFollowsRealTime: true)
        let instant = Date(timeIntervalSince1970: 2_000_000_000)
        await sandbox.setNow(instant)
        try await Task.sleep(for: .milliseconds(20))
        let now = await sandbox.now
        #expect(now > instant)
        #expect(now < instant.addingTimeInterval(60))
    }
}
