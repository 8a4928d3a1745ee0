import Foundation
import Testing
import TokenVaultLab

extension Tag {
    /// Tests that run the built binary in child processes (and tmux).
    @Tag static var process: Self
}

/// The built products directory (tokenvault, provider-sandbox), next to the test bundle.
let productsDirectory: URL = {
    let fm = FileManager.default
    var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
    candidates.append(Bundle.main.bundleURL)
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/debug"))
    for dir in candidates where fm.isExecutableFile(atPath: dir.appendingPathComponent("tokenvault").path) {
        return dir
    }
    return candidates.last!
}()

let tokenvaultBinary = productsDirectory.appendingPathComponent("tokenvault").path

/// The end-to-end tests' workspace: TokenVaultLab's, with the vault at its XDG default and the passphrase in the
/// environment.
extension Workspace {
    static let passphrase = "e2e passphrase \(UUID().uuidString.prefix(8))"

    convenience init() {
        self.init(
            prefix: "tokenvault-e2e", tokenvault: tokenvaultBinary, vault: .xdgDataHome,
            environment: ["TOKENVAULT_PASSPHRASE": Workspace.passphrase])
    }

    func expectOK(_ arguments: [String], stdin: String = "", sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try tokenvault(arguments, stdin: stdin)
        #expect(result.code == 0, "\(arguments): \(result.err)", sourceLocation: sourceLocation)
        if result.code != 0 { throw TestFailure("setup step failed: \(arguments)") }
    }
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
        var args = [
            "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", String(width), "-y", "50",
        ]
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) { args += ["-e", "\(k)=\(v)"] }
        args.append(command)
        let result = try runProcess(
            Tmux.binary, args, environment: ["PATH": "/usr/bin:/bin", "TERM": "xterm"], discardOutput: true)
        guard result.code == 0 else { throw TestFailure("tmux failed to start (exit \(result.code))") }
        let ids = try runProcess(
            Tmux.binary, ["-L", socket, "display-message", "-p", "-t", session, "#{pid} #{pane_pid} #{socket_path}"],
            environment: ["PATH": "/usr/bin:/bin"])
        let fields = ids.out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 2).map(
            String.init)
        guard fields.count == 3, let server = pid_t(fields[0]), let pane = pid_t(fields[1]) else {
            _ = try? runProcess(
                Tmux.binary, ["-L", socket, "kill-server"], environment: ["PATH": "/usr/bin:/bin"], discardOutput: true)
            throw TestFailure("tmux did not say its pids: \(ids.out) \(ids.err)")
        }
        serverPID = server
        panePID = pane
        socketPath = fields[2]
    }
    private var serverPID: pid_t = 0
    private var panePID: pid_t = 0
    private var socketPath = ""

    static let binary: String = MachineTools.find("tmux") ?? "/usr/bin/tmux"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    func send(_ keys: String...) throws {
        try runProcess(
            Tmux.binary, ["-L", socket, "send-keys", "-t", session] + keys, environment: ["PATH": "/usr/bin:/bin"])
    }

    /// Types literal text (no key-name interpretation), then optionally Enter.
    func type(_ text: String, enter: Bool = true) throws {
        try runProcess(
            Tmux.binary, ["-L", socket, "send-keys", "-t", session, "-l", text], environment: ["PATH": "/usr/bin:/bin"])
        if enter { try send("Enter") }
    }

    /// Clears the screen and tmux's scrollback (which `screen()` reads, and `clear` alone keeps), and waits until
    /// the pane shows no trace of `text`, so that counting it afterwards starts from zero.
    func clearAll(waitingFor text: String, timeout: TimeInterval = 90) throws {
        try type("clear")
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            try runProcess(
                Tmux.binary, ["-L", socket, "clear-history", "-t", session], environment: ["PATH": "/usr/bin:/bin"])
            if !(try screen()).contains(text) { return }
            usleep(50_000)
        } while Date() < deadline
        throw TestFailure("the terminal still shows '\(text)' after clear")
    }

    func screen() throws -> String {
        try runProcess(
            Tmux.binary, ["-L", socket, "capture-pane", "-p", "-t", session, "-S", "-100"],
            environment: ["PATH": "/usr/bin:/bin"]
        ).out
    }

    /// Polls the screen until `text` shows for the `occurrence`-th time; fails after `timeout` seconds.
    @discardableResult
    func waitFor(_ text: String, occurrence: Int = 1, timeout: TimeInterval = 90) throws -> String {
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
    func waitForExit(_ marker: String, timeout: TimeInterval = 90) throws -> (code: Int, screen: String) {
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

    /// Ends the server and everything in it. Tests call it in a `defer` right after starting the server, so it
    /// runs when the test fails or throws too; deinit is only the last resort.
    func kill() {
        guard !killed else { return }
        killed = true
        _ = try? runProcess(
            Tmux.binary, ["-L", socket, "kill-server"], environment: ["PATH": "/usr/bin:/bin"], discardOutput: true)
        // tmux 3.3a answers kill-server with exit 0 and yet, here, its server and shell stayed alive (six of them
        // after two runs of the suite): end them by pid as well, and remove the socket.
        for pid in [panePID, serverPID] where pid > 0 { Glibc.kill(pid, SIGKILL) }
        unlink(socketPath)
        // Gone before the test goes on (a killed process no one reaps stays a zombie, which no longer runs).
        let deadline = Date().addingTimeInterval(10)
        while serverPID > 0, Date() < deadline,
            let status = try? String(contentsOfFile: "/proc/\(serverPID)/stat", encoding: .utf8),
            !status.contains(") Z")
        {
            usleep(20_000)
        }
    }
    private var killed = false

    deinit { kill() }
}

// MARK: Background children, loopback HTTP, python3 helpers (the OAuth end-to-end suite)

/// A child started in the background in a session of its own (so it has no controlling terminal and `/dev/tty`
/// cannot be opened: tokenvault then reads pasted lines from stdin), with its stdin left open: TokenVaultLab's
/// ChildProcess under the name these tests know.
typealias BackgroundProcess = ChildProcess

extension ChildProcess {
    typealias Result = ProcessResult

    convenience init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        try self.init(executable, arguments, environment: environment, stdin: nil, newSession: true)
    }

    func writeStdin(_ text: String) { send(text) }

    /// True once the child has exited (reaps it).
    var isFinished: Bool { !isRunning }
}

/// A free loopback port, for redirect URIs (TokenVaultLab's `freePort`).
func freeLoopbackPort() -> UInt16 { freePort() }

/// One GET over a plain loopback socket that does not follow redirects: the status and the headers
/// (names lowercased). Enough for "the browser" that reads the authorize redirect.
func loopbackGET(_ url: URL, timeout: TimeInterval = 10) throws -> (status: Int, headers: [String: String]) {
    guard url.scheme == "http", let host = url.host, let port = url.port else {
        throw TestFailure("not a loopback http URL: \(url)")
    }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr(host)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw TestFailure("cannot connect to \(host):\(port)") }
    var target = url.path.isEmpty ? "/" : url.path
    if let query = url.query(percentEncoded: true) { target += "?" + query }
    let request = Array("GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
        throw TestFailure("write failed")
    }
    var response = Data()
    var buffer = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        response.append(contentsOf: buffer[0..<n])
        if let text = String(data: response, encoding: .utf8), text.contains("\r\n\r\n") { break }
    }
    let head = String(decoding: response, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0].components(
        separatedBy: "\r\n")
    guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        throw TestFailure("no HTTP response from \(url)")
    }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return (status, headers)
}

/// A real python3, found as `make deps` finds it (`command -v`): where there is none the tests that need it say
/// why they cannot run and, under `CI=true`, fail.
let python3: String? = MachineTools.python3

/// `tool` if the machine has it; otherwise prints why the calling test cannot run and returns nil, and under
/// `CI=true` records a failure: in CI a missing tool must never turn a test into a quiet pass.
@discardableResult
func requireTool(_ tool: String?, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    if tool == nil { cannotRun("\(what) is missing", sourceLocation: sourceLocation) }
    return tool
}

/// Prints why the current test cannot run; under `CI=true` that is a recorded failure, not a skip.
func cannotRun(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let test = Test.current?.name ?? "a test"
    if MachineTools.isCI {
        Issue.record("CI=true but \(reason): \(test) cannot be skipped in CI", sourceLocation: sourceLocation)
    } else {
        print("skipped: \(test): \(reason)")
    }
}

extension Workspace {
    /// Writes the browser stand-in and returns the `BROWSER` value for `mode`: tokenvault appends the URL.
    ///
    /// The stand-in returns at once and fetches in a forked child, as a real browser does not block its caller.
    /// tokenvault hands it either its single-use loopback launch address (which answers 303 to the authorize URL)
    /// or the `file://` URL of a private page with a meta refresh; the stand-in reads the page as a browser would.
    /// Modes: `follow` (GET the authorize URL without following, then GET the Location: the loopback callback),
    /// `forge-state` (first the callback with another state, then the real one), `fake-code` (the callback with a
    /// made-up code), `open` (GET the URL once: the device grant's verification_uri_complete approves).
    /// Every step is logged to `browser.log` in the workspace, with whether the stand-in's own command line and
    /// environment were clean (no state, code challenge or user code on argv; no TOKENVAULT_PASSPHRASE*).
    func browserStandIn(_ mode: String) throws -> String {
        guard let python3 else { throw TestFailure("python3 is needed for the browser stand-in") }
        let log = dir + "/browser.log"
        _ = try write(
            "browser.py",
            """
            #!\(python3)
            import html, os, re, sys, urllib.error, urllib.parse, urllib.request
            mode, url = sys.argv[1], sys.argv[-1]
            argv = " ".join(sys.argv)
            leaks = [w for w in ("state=", "code_challenge", "user_code", "userCode") if w in argv]
            leaks += [k for k in os.environ if k.startswith("TOKENVAULT_PASSPHRASE")]
            fds = sorted(int(f) for f in os.listdir("/proc/self/fd") if int(f) > 2)
            if os.fork() != 0:
                sys.exit(0)
            log = open(\(pythonString(log)), "a")
            log.write("%s argv %s\\n" % (mode, "clean" if not leaks else "LEAK " + " ".join(leaks)))
            log.write("%s fds %s\\n" % (mode, fds))
            class NoRedirect(urllib.request.HTTPRedirectHandler):
                def redirect_request(self, *args, **kwargs):
                    return None
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
            def get(target):
                try:
                    response = opener.open(target, timeout=15)
                    return response.status, response.headers.get("Location")
                except urllib.error.HTTPError as e:
                    return e.code, e.headers.get("Location")
            try:
                if url.startswith("file://"):
                    page = open(urllib.parse.unquote(url[len("file://"):])).read()
                    url = html.unescape(re.search(r'http-equiv="refresh" content="0;url=([^"]*)"', page).group(1))
                    log.write("%s page read\\n" % mode)
                status, location = get(url)
                if status == 303 and location:
                    log.write("%s launch %s\\n" % (mode, status))
                    status, location = get(location)
                log.write("%s authorize %s\\n" % (mode, status))
                if mode != "open" and location:
                    if mode == "forge-state":
                        forged = re.sub(r"([?&]state=)[^&]*", r"\\1forged0state0by0the0stand0in", location)
                        status, _ = get(forged)
                        log.write("%s callback %s\\n" % (mode, status))
                        status, _ = get(location)
                        log.write("%s real-callback %s\\n" % (mode, status))
                    else:
                        if mode == "fake-code":
                            location = re.sub(r"([?&]code=)[^&]*", r"\\1madeUpCode0000000000", location)
                        status, _ = get(location)
                        log.write("%s callback %s\\n" % (mode, status))
            except Exception as e:
                log.write("%s error %r\\n" % (mode, e))
            log.close()
            """, mode: 0o755)
        return dir + "/browser.py " + mode
    }

    var browserLog: String { (try? String(contentsOfFile: dir + "/browser.log", encoding: .utf8)) ?? "" }
}

/// A Python string literal for `text`.
func pythonString(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
}

/// `PRAGMA integrity_check` of a SQLite file, through python3's sqlite3 module. The file is opened read-only
/// (`mode=ro`), so a missing path is an error, never a new empty database that checks "ok".
func sqliteIntegrityCheck(_ path: String) throws -> String {
    guard let python3 else { throw TestFailure("python3 is needed for the integrity check") }
    let script = """
        import pathlib, sqlite3, sys
        c = sqlite3.connect(pathlib.Path(sys.argv[1]).absolute().as_uri() + '?mode=ro', uri=True)
        print(c.execute('PRAGMA integrity_check').fetchone()[0])
        """
    let result = try runProcess(
        python3, ["-c", script, path], environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
    guard result.code == 0 else { throw TestFailure("python3 sqlite3 failed on \(path): \(result.err)") }
    return result.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Parses a JSON array of objects printed by tokenvault. Anything else records a failure (and gives `[]`), so a
/// check that something is absent cannot pass on garbage output. The text is not quoted: it may hold a token.
func jsonObjects(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
    guard let parsed = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] else {
        Issue.record(
            "expected a JSON array of objects, got \(text.utf8.count) bytes that are not one",
            sourceLocation: sourceLocation)
        return []
    }
    return parsed
}

/// Parses a JSON object printed by tokenvault; anything else records a failure (and gives `[:]`).
func jsonObject(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any] {
    guard let parsed = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
        Issue.record(
            "expected a JSON object, got \(text.utf8.count) bytes that are not one", sourceLocation: sourceLocation)
        return [:]
    }
    return parsed
}

/// The helpers above must turn a bad answer into a failure, never into an empty success.
@Suite struct TestHelperTests {
    @Test func jsonHelpersFailOnOutputThatIsNotJSON() {
        withKnownIssue("garbage is not an empty list") { _ = jsonObjects("tokenvault: error: not json") }
        withKnownIssue("an array is not an object") { _ = jsonObject(#"[{"a": 1}]"#) }
        withKnownIssue("empty output is not an object") { _ = jsonObject("") }
        #expect(jsonObjects(#"[{"a": 1}]"#).count == 1)
        #expect(jsonObject(#"{"a": 1}"#)["a"] as? Int == 1)
    }

    @Test func integrityCheckOfAMissingFileIsAnErrorAndCreatesNothing() throws {
        guard requireTool(python3, "python3") != nil else { return }
        let ws = Workspace()
        let missing = ws.dir + "/missing.db"
        #expect(throws: TestFailure.self) { try sqliteIntegrityCheck(missing) }
        #expect(!FileManager.default.fileExists(atPath: missing))
    }
}
