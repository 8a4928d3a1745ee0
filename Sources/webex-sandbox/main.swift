// The webex-sandbox executable: parse, start, print the base URL, serve until SIGINT/SIGTERM.
import Foundation
import WebexSandbox

let commandLine: SandboxCommandLine
do {
    commandLine = try SandboxCommandLine.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("webex-sandbox: error: \(error.localizedDescription)\n".utf8))
    exit(64)
}
if commandLine.showHelp {
    print(SandboxCommandLine.usage)
    exit(0)
}

let sandbox = WebexSandbox(configuration: commandLine.configuration)
let baseURL: URL
do {
    baseURL = try await sandbox.start(port: commandLine.port)
} catch {
    FileHandle.standardError.write(Data("webex-sandbox: error: \(error.localizedDescription)\n".utf8))
    exit(69)
}
// Unbuffered: the first line must reach a parent reading the pipe at once.
FileHandle.standardOutput.write(Data((baseURL.absoluteString + "\n").utf8))

// Nothing needs flushing on shutdown: every state change lives in memory, so a signal simply ends the process.
var signalSources: [any DispatchSourceSignal] = []
for signalNumber in [SIGINT, SIGTERM] {
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
    source.setEventHandler {
        exit(0)
    }
    source.resume()
    signalSources.append(source)
}

// Serve until a signal ends the process.
while true {
    try await Task.sleep(for: .seconds(3600))
}
