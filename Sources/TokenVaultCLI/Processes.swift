import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts the user's browser on a URL: `$BROWSER` (a command, or several separated by ':'; `%s` stands for
/// the URL), else xdg-open. The browser is not waited for.
public enum Browser {
    @Sendable public static func open(_ url: URL, environment: [String: String]) -> Bool {
        var commands: [[String]] = []
        if let browser = environment["BROWSER"], !browser.isEmpty {
            for entry in browser.split(separator: ":") where !entry.isEmpty {
                let words = entry.split(separator: " ").map(String.init)
                commands.append(words.contains("%s") ? words.map { $0 == "%s" ? url.absoluteString : $0 } : words + [url.absoluteString])
            }
        }
        commands.append(["xdg-open", url.absoluteString])
        for command in commands {
            if ProgramRunner.spawnDetached(command, environment: environment) { return true }
        }
        return false
    }
}

/// Running other programs.
public enum ProgramRunner {
    /// Starts a program found on PATH without waiting for it; its output goes to /dev/null so that a chatty
    /// browser does not write over prompts or into `$(…)`.
    static func spawnDetached(_ command: [String], environment: [String: String]) -> Bool {
        guard let path = resolve(command[0], environment: environment) else { return false }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        return posix_spawn(&pid, path, &actions, nil, argv, envp) == 0
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
    @Sendable public static func replaceProcess(_ program: String, _ arguments: [String], _ environment: [String: String]) throws -> Int32 {
        guard let path = resolve(program, environment: environment) else {
            throw CLIError.usage("cannot find the program '\(program)'", hint: "check the name, or give its full path")
        }
        // Signal dispositions and the mask survive execve. The calling thread is a worker of the async runtime,
        // which blocks signals in its threads; the program must start with none blocked and none ignored by us.
        signal(SIGINT, SIG_DFL)
        signal(SIGPIPE, SIG_DFL)
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve(path, argv, envp)
        let reason = String(cString: strerror(errno))
        argv.forEach { free($0) }
        envp.forEach { free($0) }
        throw CLIError.usage("cannot run '\(program)': \(reason)")
    }
}
