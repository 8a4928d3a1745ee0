import Foundation
import Testing
import TokenVaultLab

extension Tag {
    /// Tests that run the built binary in child processes (and tmux).
    @Tag static var process: Self
}

/// The built products directory (tokenvault, webex-sandbox), next to the test bundle.
let productsDirectory: URL = {
    let fm = FileManager.default
    var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    candidates.append(Bundle.main.bundleURL)
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/debug"))
    for dir in candidates where fm.isExecutableFile(atPath: dir.appendingPathComponent("tokenvault").path) {
        return dir
    }
    return candidates.last!
}()

let tokenvaultBinary = productsDirectory.appendingPathComponent("tokenvault").path

/// A temporary directory with a vault path and the environment for the real binary.
final class Workspace: @unchecked Sendable {
    let dir: String
    var vault: String { dir + "/data/tokenvault/vault.db" }
    var environment: [String: String]
    static let passphrase = "e2e passphrase \(UUID().uuidString.prefix(8))"

    init() {
        dir = NSTemporaryDirectory() + "tokenvault-e2e-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        environment = [
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": dir, "XDG_DATA_HOME": dir + "/data",
            "TOKENVAULT_PASSPHRASE": Workspace.passphrase, "LANG": "C.UTF-8",
        ]
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    @discardableResult
    func tokenvault(_ arguments: [String], stdin: String = "", environment extra: [String: String?] = [:]) throws -> ProcessResult {
        var env = environment
        for (k, v) in extra { env[k] = v }
        return try runProcess(tokenvaultBinary, arguments, environment: env, stdin: stdin)
    }

    func expectOK(_ arguments: [String], stdin: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try tokenvault(arguments, stdin: stdin)
        #expect(result.code == 0, "\(arguments): \(result.err)", sourceLocation: sourceLocation)
        if result.code != 0 { throw TestFailure("setup step failed: \(arguments)") }
    }

    func write(_ name: String, _ content: String, mode: Int = 0o600) throws -> String {
        let path = dir + "/" + name
        try Data(content.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
        return path
    }
}

func tokenJSON(access: String, refresh: String?, expiresIn: Int = 1_209_599) -> String {
    var object: [String: Any] = ["access_token": access, "expires_in": expiresIn, "token_type": "Bearer"]
    if let refresh { object["refresh_token"] = refresh; object["refresh_token_expires_in"] = 7_776_000 }
    return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}

func generatedToken() -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    return String((0..<48).map { _ in alphabet.randomElement()! })
}

/// A tmux server of our own (its own socket), for driving prompts as a person would.
final class Tmux: @unchecked Sendable {
    let socket: String
    let session = "tv"

    init(command: String, environment: [String: String], width: Int = 200) throws {
        socket = "tokenvault-test-\(UUID().uuidString.prefix(8))"
        var args = ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", String(width), "-y", "50"]
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { args += ["-e", "\(k)=\(v)"] }
        args.append(command)
        let result = try runProcess(Tmux.binary, args, environment: ["PATH": "/usr/bin:/bin", "TERM": "xterm"], discardOutput: true)
        guard result.code == 0 else { throw TestFailure("tmux failed to start (exit \(result.code))") }
    }

    static var binary: String { ["/usr/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/tmux" }
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    func send(_ keys: String...) throws {
        try runProcess(Tmux.binary, ["-L", socket, "send-keys", "-t", session] + keys, environment: ["PATH": "/usr/bin:/bin"])
    }

    /// Types literal text (no key-name interpretation), then optionally Enter.
    func type(_ text: String, enter: Bool = true) throws {
        try runProcess(Tmux.binary, ["-L", socket, "send-keys", "-t", session, "-l", text], environment: ["PATH": "/usr/bin:/bin"])
        if enter { try send("Enter") }
    }

    func screen() throws -> String {
        try runProcess(Tmux.binary, ["-L", socket, "capture-pane", "-p", "-t", session, "-S", "-100"], environment: ["PATH": "/usr/bin:/bin"]).out
    }

    /// Polls the screen until `text` shows for the `occurrence`-th time; fails after `timeout` seconds.
    @discardableResult
    func waitFor(_ text: String, occurrence: Int = 1, timeout: TimeInterval = 30) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try screen()
            if last.components(separatedBy: text).count - 1 >= occurrence { return last }
            usleep(50_000)
        }
        throw TestFailure("'\(text)' did not appear on the terminal; screen was:\n\(last)")
    }

    /// Waits for `MARKER=<digits>`, which a typed command prints with `echo MARKER=$?`; the typed command itself
    /// shows `MARKER=$?`, so it does not match.
    func waitForExit(_ marker: String, timeout: TimeInterval = 30) throws -> (code: Int, screen: String) {
        let deadline = Date().addingTimeInterval(timeout)
        let pattern = try Regex("\(marker)=([0-9]+)")
        var last = ""
        while Date() < deadline {
            last = try screen()
            if let match = last.firstMatch(of: pattern), let code = Int(match.output[1].substring ?? "") {
                return (code, last)
            }
            usleep(50_000)
        }
        throw TestFailure("\(marker)=N did not appear on the terminal; screen was:\n\(last)")
    }

    deinit {
        _ = try? runProcess(Tmux.binary, ["-L", socket, "kill-server"], environment: ["PATH": "/usr/bin:/bin"], discardOutput: true)
    }
}
