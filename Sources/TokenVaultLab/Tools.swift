import Foundation

/// The programs the tests, the fault suite and the bench take from the machine, found the way `make deps` finds
/// them (`command -v`): the first executable of that name on `PATH`, then the usual system directories, so a tool
/// `make deps` accepts is never one the tests cannot see.
public enum MachineTools {
    /// True under `CI=true`: there a test that cannot run must fail, never skip.
    public static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// The first executable `name` on `PATH`, then in /usr/local/bin, /usr/bin and /bin; nil when there is none.
    public static func find(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        let dirs = (path ?? "").split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        for dir in dirs where dir.hasPrefix("/") {
            let candidate = dir + "/" + name
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }

    /// The real python3 interpreter `find("python3")` leads to. A version manager's shim (pyenv's
    /// `~/.pyenv/shims/python3` is a shell script) works only with the manager's own `PATH` and variables, and
    /// the tests run their children with a short, fixed environment; so ask the interpreter where it lives.
    /// Debian's /usr/bin/python3 comes first when the machine has it: every uid can run it (the attack tests
    /// run python3 as a second user, who cannot enter /root, where pyenv lives).
    public static let python3: String? = {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        guard let found = find("python3") else { return nil }
        guard
            let result = try? runProcess(
                found, ["-c", "import sys; print(sys.executable)"],
                environment: ProcessInfo.processInfo.environment, timeout: 30),
            result.code == 0
        else { return found }
        let real = result.out.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: real) ? real : found
    }()

    /// The directory of `find(name)`, for a child's `PATH` (tests give children a fixed, short `PATH`).
    public static func directory(of name: String) -> String? {
        find(name).map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
    }
}
