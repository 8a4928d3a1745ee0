// The provider-sandbox program (also installed as webex-sandbox, its name before it served six providers' shapes):
// parse, start, print the base URL, serve until SIGINT/SIGTERM.
import Foundation

public enum SandboxProgram {
    /// Runs the program; never returns. `name` is the name it was started as, used in its messages.
    public static func main(name: String) async -> Never {
        let commandLine: SandboxCommandLine
        do {
            commandLine = try SandboxCommandLine.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("\(name): error: \(error.localizedDescription)\n".utf8))
            FileHandle.standardError.write(Data("\(name): hint: run \(name) --help\n".utf8))
            exit(64)
        }
        if commandLine.showHelp {
            print(SandboxCommandLine.usage)
            exit(0)
        }

        // Nothing needs flushing on shutdown: all state lives in memory, so a signal ends the process at once with
        // status 0. _exit is async-signal-safe; a plain handler also overrides a SIG_IGN inherited from a background shell.
        // Installed before the base URL is printed, so a parent that signals as soon as it reads the URL gets status 0.
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in _exit(0) }
        }

        // Run with real time so that tokens expire and device polling paces as a real provider's would.
        let sandbox = ProviderSandbox(configuration: commandLine.configuration, clockFollowsRealTime: true)
        let baseURL: URL
        do {
            baseURL = try await sandbox.start(port: commandLine.port)
        } catch {
            FileHandle.standardError.write(Data("\(name): error: \(error.localizedDescription)\n".utf8))
            exit(69)
        }
        // Unbuffered: the first line must reach a parent reading the pipe at once.
        FileHandle.standardOutput.write(Data((baseURL.absoluteString + "\n").utf8))

        // Serve until a signal ends the process.
        while true {
            try? await Task.sleep(for: .seconds(3600))
        }
    }
}
