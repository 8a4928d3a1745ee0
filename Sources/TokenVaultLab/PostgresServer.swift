import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `pg_ctl start` with its unix
/// socket in that directory (no TCP listener; the port from ``freePort()`` names the socket), trust authentication
/// for those local connections only, a fresh database per test (``createDatabase()``), and ``stop()``, which
/// always runs: by the caller, at the process's exit, and, should the process be killed, by a watchdog that stops
/// the server once the process is gone. Nothing is left running.
///
/// As root, the server runs as the `postgres` user (`initdb` refuses root) through `setpriv`; its superuser is
/// named after the user running the tests, so that their connections need no `user=`.
public final class PostgresServer: @unchecked Sendable {
    /// The temporary directory: `data/` (the cluster), the socket `.s.PGSQL.<port>` and `server.log`.
    public let directory: String
    public let port: UInt16
    private let binaries: String
    private let runAs: [String]
    private let lock = NSLock()
    private var stopped = false
    private var watchdog: pid_t = 0

    public var dataDirectory: String { directory + "/data" }
    /// The directory of the server's unix socket (libpq's `host=`).
    public var socketDirectory: String { directory }

    /// The location tokenvault is given for `database`.
    public func location(database: String) -> String {
        "postgresql:///\(database)?host=\(socketDirectory)&port=\(port)"
    }

    /// The directory holding initdb, pg_ctl, createdb and psql (the newest installed version), if any.
    public static func findBinaries() -> String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init)
            .sorted()
        for version in versions.reversed()
        where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        return MachineTools.directory(of: "initdb")
    }

    private init(directory: String, port: UInt16, binaries: String, runAs: [String]) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.runAs = runAs
    }

    deinit { stop() }

    /// Makes a cluster and starts it; on any failure everything made so far is stopped and removed.
    public static func start() throws -> PostgresServer {
        guard let binaries = findBinaries() else {
            throw TestFailure(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql ('make deps' does)"
            )
        }
        var runAs: [String] = []
        if geteuid() == 0 {
            guard let setpriv = MachineTools.find("setpriv"), let user = getpwnam("postgres") else {
                throw TestFailure(
                    "running as root, the test server needs setpriv and a 'postgres' user (Debian's postgresql package makes it)"
                )
            }
            runAs = [
                setpriv, "--reuid=\(user.pointee.pw_uid)", "--regid=\(user.pointee.pw_gid)", "--clear-groups", "--",
            ]
        }
        let directory =
            NSTemporaryDirectory() + TestRun.name("tokenvault-pg") + UUID().uuidString.prefix(8).lowercased()
        guard mkdir(directory, 0o700) == 0 else {
            throw TestFailure("cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        if geteuid() == 0, let user = getpwnam("postgres") {
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        let server = PostgresServer(directory: directory, port: freePort(), binaries: binaries, runAs: runAs)
        // The watchdog first: a process killed during initdb leaves no directory either.
        server.startWatchdog()
        do {
            try server.initialize()
            try server.startServer()
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    /// The server programs' environment: nothing of this process's (no PG* variable can redirect them).
    private var environment: [String: String] { ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"] }

    @discardableResult
    /// Runs one of the server's programs: as the server's user (`asServer`), or as this process's user, whose
    /// role is the cluster's superuser (the clients createdb and psql).
    private func run(_ program: String, _ arguments: [String], asServer: Bool = true, timeout: TimeInterval = 60) throws
        -> ProcessResult
    {
        let command = (asServer ? runAs : []) + [binaries + "/" + program] + arguments
        let result = try runProcess(command[0], Array(command.dropFirst()), environment: environment, timeout: timeout)
        guard result.code == 0 else {
            throw TestFailure("\(program) failed (exit \(result.code)): \(result.err)\(result.out)\(serverLog())")
        }
        return result
    }

    private func serverLog() -> String {
        guard let log = try? String(contentsOfFile: directory + "/server.log", encoding: .utf8), !log.isEmpty else {
            return ""
        }
        return "\nserver.log:\n" + log.suffix(2000)
    }

    private func initialize() throws {
        let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        try run(
            "initdb",
            [
                "--pgdata=" + dataDirectory, "--username=" + user, "--auth-local=trust", "--auth-host=reject",
                "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
            ])
        // Unix socket only, in our directory; a test server need not survive a power cut.
        let settings = """

            listen_addresses = ''
            unix_socket_directories = '\(socketDirectory)'
            port = \(port)
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            shared_buffers = 16MB
            max_connections = 200
            """
        guard let handle = FileHandle(forWritingAtPath: dataDirectory + "/postgresql.conf") else {
            throw TestFailure("cannot open \(dataDirectory)/postgresql.conf")
        }
        handle.seekToEndOfFile()
        handle.write(Data(settings.utf8))
        try handle.close()
    }

    private func startServer() throws {
        try run(
            "pg_ctl",
            [
                "start", "--pgdata=" + dataDirectory, "--wait", "--timeout=60", "--silent",
                "--log=" + directory + "/server.log",
            ], timeout: 90)
    }

    /// Stops and starts the server (`pg_ctl restart -m fast`): every client's connection is cut, as in a real
    /// server restart.
    public func restart() throws {
        try run(
            "pg_ctl",
            [
                "restart", "--pgdata=" + dataDirectory, "--mode=fast", "--wait", "--timeout=60", "--silent",
                "--log=" + directory + "/server.log",
            ], timeout: 90)
    }

    /// Stops the server (`pg_ctl stop -m fast`) and keeps its data, for ``resume()``: clients see their sessions
    /// end, then refused connections.
    public func pause() throws {
        try run(
            "pg_ctl", ["stop", "--pgdata=" + dataDirectory, "--mode=fast", "--wait", "--timeout=60", "--silent"],
            timeout: 90)
    }

    /// Starts the server ``pause()`` stopped.
    public func resume() throws { try startServer() }

    /// A new, empty database; returns its name. Its default collation is ICU's en-US, as a production database
    /// made under en_US.UTF-8 sorts ("alice" before "Bob"), not byte order: tokenvault must not depend on it.
    public func createDatabase(prefix: String = "vault") throws -> String {
        let name = prefix + "_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try run(
            "createdb",
            [
                "--host=" + socketDirectory, "--port=\(port)", "--template=template0", "--encoding=UTF8",
                "--locale-provider=icu", "--icu-locale=en-US", name,
            ], asServer: false)
        return name
    }

    /// psql, for a test's own client process.
    public var psqlPath: String { binaries + "/psql" }

    /// Runs SQL through psql as the superuser (a database administrator's or an attacker's edits); the rows come
    /// back unaligned, `|`-separated, one a line. Fails on the first error.
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        let psql = binaries + "/psql"
        let result = try runProcess(
            psql,
            [
                "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1",
                "--host=" + socketDirectory, "--port=\(port)", "--dbname=" + database, "--command=" + sql,
            ],
            environment: environment, timeout: 60)
        guard result.code == 0 else {
            throw PostgresError(message: result.err.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.out.trimmingCharacters(in: .newlines)
    }

    /// What psql said when a statement failed.
    public struct PostgresError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A shell that waits for this process to end, then stops the server and removes its directory: the last
    /// resort when the test process is killed and neither stop() nor atexit runs. Its own session, so that a
    /// signal to this process's group does not end it first.
    private func startWatchdog() {
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            \(runAs.map(shellQuoted).joined(separator: " ")) \(shellQuoted(binaries + "/pg_ctl")) stop --pgdata=\(shellQuoted(dataDirectory)) --mode=immediate --wait --silent >/dev/null 2>&1
            rm -rf \(shellQuoted(directory))
            """
        if let child = try? spawnChild(
            "/bin/sh", ["-c", script], environment: environment,
            discardStdout: true, discardStderr: true, newSession: true)
        {
            close(child.stdinFD)
            watchdog = child.pid
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`; the postmaster is killed if that fails) and removes the directory.
    /// Safe to call more than once.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        let pidFile = dataDirectory + "/postmaster.pid"
        if FileManager.default.fileExists(atPath: pidFile) {
            let postmaster = (try? String(contentsOfFile: pidFile, encoding: .utf8))?.split(separator: "\n").first
                .flatMap { pid_t($0) }
            if (try? run(
                "pg_ctl", ["stop", "--pgdata=" + dataDirectory, "--mode=fast", "--wait", "--timeout=30", "--silent"],
                timeout: 45)) == nil,
                let postmaster, postmaster > 0
            {
                kill(postmaster, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        if watchdog > 0 {
            kill(watchdog, SIGKILL)
            var status: Int32 = 0
            waitpid(watchdog, &status, 0)
        }
    }

    // MARK: One server per process

    nonisolated(unsafe) private static var sharedServer: Result<PostgresServer, TestFailure>?
    private static let sharedLock = NSLock()

    /// ``shared()`` waited for on a thread of its own. The first call starts the server (initdb and pg_ctl, some
    /// seconds), and async tests waiting in shared() meanwhile would hold the few threads of the cooperative pool
    /// (two on a 2-core machine): an in-process sandbox in another test once went unanswered for over 10 s.
    public static func sharedOffPool() async throws -> PostgresServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try shared() }) }.start()
        }
    }

    /// ``start()`` on a thread of its own, for the same reason: a server of a test's own.
    public static func startOffPool() async throws -> PostgresServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try start() }) }.start()
        }
    }

    /// The server this test process shares between its suites, started at the first call and stopped when the
    /// process exits.
    public static func shared() throws -> PostgresServer {
        try sharedLock.withLock {
            if let sharedServer { return try sharedServer.get() }
            let result: Result<PostgresServer, TestFailure>
            do {
                result = .success(try start())
                atexit { try? PostgresServer.sharedServer?.get().stop() }
            } catch let failure as TestFailure {
                result = .failure(failure)
            } catch {
                result = .failure(TestFailure("\(error)"))
            }
            sharedServer = result
            return try result.get()
        }
    }
}

private func shellQuoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
