import Foundation
import Spawning
import TokenVaultCore
import VaultCrypto
import VaultOAuth
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// What no program tokenvault starts may inherit: the vault's passphrase in any of its forms.
enum ChildEnvironment {
    static func scrubbed(_ environment: [String: String]) -> [String: String] {
        environment.filter { !$0.key.hasPrefix("TOKENVAULT_PASSPHRASE") }
    }

    /// Marks every descriptor above stderr close-on-exec, so that a child started next (the browser, or the
    /// program `exec` becomes) inherits none of ours: not the vault file, not a provider connection, not a
    /// passphrase descriptor. Our own use of them is unaffected.
    static func closeOnExecAll() {
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) }
        for fd in listed ?? Array(3..<1024) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}

/// A small page that sends the browser on to a URL which must not appear on any command line (the
/// authorization URL with its `state` and PKCE challenge, a device grant's complete verification URI with its
/// user code): every local user can read `/proc/PID/cmdline`, so the browser is given the page's `file://` URL
/// instead. The page is 0600 in a 0700 directory of the user's (`$XDG_RUNTIME_DIR/tokenvault`, else
/// `tokenvault-browser` beside the vault file, or in the home directory for a PostgreSQL vault), and removed once
/// the flow ends.
struct BrowserPage {
    let path: String
    var url: URL { URL(fileURLWithPath: path) }

    static func directory(context: Context, vaultPath: String) throws -> String {
        if let runtime = context.environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/"),
            (try? checkPrivate(runtime, mayBeShared: false)) != nil
        {
            return runtime + "/tokenvault"
        }
        guard let beside = VaultLocation(vaultPath).fileDirectory else {
            // Nothing of a PostgreSQL vault is on this machine to put the page beside.
            return (context.environment["HOME"] ?? NSHomeDirectory()) + "/.tokenvault-browser"
        }
        return beside + "/tokenvault-browser"
    }

    /// Writes the page for `target`; the caller removes it with ``remove()``.
    static func write(sendingTo target: URL, context: Context, vaultPath: String) throws -> BrowserPage {
        let dir = try directory(context: context, vaultPath: vaultPath)
        if mkdir(dir, 0o700) == 0 { chmod(dir, 0o700) }
        try checkPrivate(dir, mayBeShared: false)
        let name = "authorize-" + Random.bytes(16).map { String(format: "%02x", $0) }.joined() + ".html"
        let path = dir + "/" + name
        let fd = Glibc.open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CLIError.usage("cannot write the browser page \(path): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        fchmod(fd, 0o600)
        let bytes = Array(html(target).utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            unlink(path)
            throw CLIError.usage("cannot write the browser page \(path): \(String(cString: strerror(errno)))")
        }
        return BrowserPage(path: path)
    }

    func remove() { unlink(path) }

    /// A meta refresh (works without JavaScript) and a script (replaces the page in the history), plus a link.
    static func html(_ target: URL) -> String {
        let attribute = LoopbackListener.escape(target.absoluteString)
        // A JSON string is a JavaScript string; `<` escaped so no `</script>` can end the element.
        let data =
            (try? JSONSerialization.data(withJSONObject: [target.absoluteString], options: [.withoutEscapingSlashes]))
            ?? Data("[\"\"]".utf8)
        let script = String(decoding: data, as: UTF8.self).dropFirst().dropLast().replacingOccurrences(
            of: "<", with: "\\u003c")
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
            <meta http-equiv="refresh" content="0;url=\(attribute)">
            <title>tokenvault: continue to sign in</title></head>
            <body style="font-family: sans-serif; margin: 3em"><p>Continuing to <a href="\(attribute)">the sign-in page</a>…</p>
            <script>window.location.replace(\(script));</script></body></html>

            """
    }

    /// A directory (not a symlink) owned by us that no one else can enter; `mayBeShared` is for a parent.
    @discardableResult
    static func checkPrivate(_ dir: String, mayBeShared: Bool) throws -> String {
        var info = stat()
        guard lstat(dir, &info) == 0 else {
            throw CLIError.usage("cannot use \(dir) for the browser page: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(), mayBeShared || info.st_mode & 0o077 == 0
        else {
            throw CLIError.usage(
                "refusing to put the browser page in \(dir): it must be a directory of yours that no one else can open (mode 700)",
                hint: "chmod 700 \(dir), or remove it and try again")
        }
        return dir
    }
}

/// Starts the user's browser on a URL: `$BROWSER` (a command, or several separated by ':'; `%s` stands for
/// the URL), else xdg-open when there is a display to show it on. Each command is given ``settle`` seconds to fail:
/// one that exits non-zero by then (xdg-open's 3, "no method available", on a host without a desktop; `false`) did
/// not open anything, and the next is tried. One that exits 0 or is still running has started a browser, which is
/// not waited for beyond that.
public enum Browser {
    static let settle: TimeInterval = 2

    @Sendable public static func open(_ url: URL, environment: [String: String]) -> Bool {
        let environment = ChildEnvironment.scrubbed(environment)
        for command in commands(for: url, environment: environment) {
            if ProgramRunner.spawnAndSettle(command, environment: environment, settle: settle) { return true }
        }
        return false
    }

    /// The commands to try, in order.
    static func commands(for url: URL, environment: [String: String]) -> [[String]] {
        var commands: [[String]] = []
        if let browser = environment["BROWSER"], !browser.isEmpty {
            for entry in browser.split(separator: ":") where !entry.isEmpty {
                let words = entry.split(separator: " ").map(String.init)
                commands.append(
                    words.contains("%s")
                        ? words.map { $0 == "%s" ? url.absoluteString : $0 } : words + [url.absoluteString])
            }
        }
        // Without a display (an ssh session, a server) xdg-open can only fail, or start a text browser that takes
        // over the terminal the paste prompt needs.
        if hasDisplay(environment) { commands.append(["xdg-open", url.absoluteString]) }
        return commands
    }

    static func hasDisplay(_ environment: [String: String]) -> Bool {
        !(environment["DISPLAY"] ?? "").isEmpty || !(environment["WAYLAND_DISPLAY"] ?? "").isEmpty
    }
}

/// Running other programs.
public enum ProgramRunner {
    /// Starts a program found on PATH without waiting for it; its output goes to /dev/null so that a chatty
    /// browser does not write over prompts or into `$(…)`.
    private static func spawn(_ command: [String], environment: [String: String]) -> SpawnedProcess? {
        guard let path = resolve(command[0], environment: environment) else { return nil }
        ChildEnvironment.closeOnExecAll()
        return try? SpawnedProcess.spawn(path, arguments: command, environment: environment)
    }

    /// Starts a program (see ``spawn``) and gives it `settle` seconds: false when it could not be
    /// started or exited other than with 0 by then; true when it exited 0 or is still running.
    static func spawnAndSettle(_ command: [String], environment: [String: String], settle: TimeInterval) -> Bool {
        guard let child = spawn(command, environment: environment) else { return false }
        switch child.waitForExit(timeout: settle) {
        case nil: return true  // still running: it started
        case .unknown: return true  // not ours to wait for any more: it started
        case .exited(let code): return code == 0
        case .signalled: return false
        }
    }

    /// The path of `name` on PATH (or `name` itself when it contains a slash).
    static func resolve(_ name: String, environment: [String: String]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Replaces tokenvault with the program (execve), as `exec` in a shell does: stdin, stdout, stderr, signals
    /// and the exit status are the program's own, with nothing in between to forward or lose them. The token
    /// travels only in the environment, never on any argv.
    @Sendable public static func replaceProcess(
        _ program: String, _ arguments: [String], _ environment: [String: String]
    ) throws -> Int32 {
        let path = try resolveToRun(program, environment: environment)
        // Signal dispositions and the mask survive execve. The calling thread is a worker of the async runtime,
        // which blocks signals in its threads; the program must start with none blocked and none ignored by us.
        signal(SIGINT, SIG_DFL)
        signal(SIGPIPE, SIG_DFL)
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = ChildEnvironment.scrubbed(environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        ChildEnvironment.closeOnExecAll()
        execve(path, argv, envp)
        let failure = errno
        argv.forEach { free($0) }
        envp.forEach { free($0) }
        // A script whose interpreter is missing also fails with ENOENT; the file itself was there (126, as bash).
        throw CLIError.cannotExecute(program, reason: String(cString: strerror(failure)))
    }

    /// Where `exec` finds its command, with the shells' distinction: nothing there is 127 (not found), a file
    /// that cannot be run (no execute permission, a directory) is 126.
    static func resolveToRun(_ program: String, environment: [String: String]) throws -> String {
        func problem(_ path: String) -> String? {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            if (info.st_mode & S_IFMT) == S_IFDIR { return "it is a directory" }
            if access(path, X_OK) != 0 { return "permission denied (it is not executable)" }
            return ""
        }
        let candidates: [String]
        if program.contains("/") {
            candidates = [program]
        } else {
            let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            candidates = path.split(separator: ":", omittingEmptySubsequences: false).map {
                "\($0.isEmpty ? "." : $0)/\(program)"
            }
        }
        var unrunnable: String?
        for candidate in candidates {
            switch problem(candidate) {
            case nil: continue
            case ""?: return candidate
            case let reason?: unrunnable = unrunnable ?? reason
            }
        }
        if let unrunnable { throw CLIError.cannotExecute(program, reason: unrunnable) }
        throw CLIError.commandNotFound(program)
    }
}
