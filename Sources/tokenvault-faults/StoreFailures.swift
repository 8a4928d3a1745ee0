import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// The vault's store failing after the provider answered, under strict rotation (the old refresh token dies with
/// the answer) and 300 ms of provider latency: a PostgreSQL server restarted, stopped for a while, or the
/// sessions terminated; an SQLite vault's file system filling up or turning read-only. Each during
/// `refresh-all --skip-recent 0` of a vault of 200 accounts, about 2 s in.
///
/// Counted at the provider against the store: every refresh token the provider answered must have its pair in
/// the store once the store is back and one more command (`token`) has run; until then an account whose newest
/// pair is not in the store must not be listed `ok`. Once the store fails, at most the refreshes in flight may
/// still spend a refresh token, and the run says so in one line.
enum StoreFailures {
    enum Fault: CustomStringConvertible {
        case restart, stop(seconds: Int), terminate, diskFull, readOnly

        var description: String {
            switch self {
            case .restart: "PostgreSQL restarted (pg_ctl restart -m fast)"
            case .stop(let s): "PostgreSQL stopped for \(s) s"
            case .terminate: "PostgreSQL sessions terminated (pg_terminate_backend)"
            case .diskFull: "SQLite file system full (ENOSPC, tmpfs)"
            case .readOnly: "SQLite file system turned read-only (ext4 errors=remount-ro, an error triggered)"
            }
        }
        var isPostgres: Bool {
            switch self {
            case .restart, .stop, .terminate: true
            default: false
            }
        }
    }

    static let accounts = 200
    static let concurrency = 8

    static func run(_ report: Report, _ options: Options) {
        var faults: [Fault] =
            options.full
            ? [.restart, .terminate, .stop(seconds: 30), .stop(seconds: 300), .diskFull, .readOnly]
            : [.restart, .diskFull]
        // TOKENVAULT_FAULTS_STORE=WORDS: only the faults whose description contains WORDS (working on one).
        if let only = ProcessInfo.processInfo.environment["TOKENVAULT_FAULTS_STORE"] {
            faults = faults.filter { $0.description.localizedCaseInsensitiveContains(only) }
        }
        let before = ProcessInfo.processInfo.environment["TOKENVAULT_FAULTS_JOURNAL"] == "off"
        report.part(
            "store failures",
            "\(faults.map(\.description).joined(separator: "; ")), each about 2 s into `refresh-all --skip-recent 0 --concurrency \(concurrency)` of \(accounts) accounts, refresh tokens rotating strictly, 300 ms provider latency\(before ? " — with the journal switched off (TOKENVAULT_JOURNAL=off: tokenvault before it)" : "")"
        )
        for fault in faults { scenario(fault, report, options, journalOff: before) }
        // TOKENVAULT_FAULTS_STORE=cost: the journal's cost alone.
        if options.full, let only = ProcessInfo.processInfo.environment["TOKENVAULT_FAULTS_STORE"] ?? Optional("cost"),
            only == "cost"
        {
            journalCost(report, options)
        }
    }

    /// What the journal costs a run that meets no failure: refresh-all of 200 accounts at latency 0 (so the
    /// journal's writes and fsyncs are not hidden behind the provider), on a vault file on this machine's disk,
    /// with the journal and without, alternating, median of 3 each. A note, not a check.
    static func journalCost(_ report: Report, _ options: Options) {
        let ws = Workspace("journalcost", tokenvault: options.tokenvault)
        defer { ws.remove() }
        guard let sandbox = try? Sandbox(rotation: .on, latency: 0, accessTokenLifetime: 3600),
            ws.setUp(apiBase: sandbox.url, client: sandbox.client) == nil,
            let pairs = try? sandbox.issuePairs(count: accounts, prefix: "c"), ws.importPairs(pairs).code == 0
        else {
            report.note("journal cost: not measured (set-up failed)")
            return
        }
        defer { sandbox.stop() }
        var with: [Double] = []
        var without: [Double] = []
        for i in 0..<6 {
            let off = i % 2 == 1
            let started = Date()
            let result = ws.run(
                ["refresh-all", "--skip-recent", "0", "--concurrency", "\(concurrency)"],
                env: off ? ["TOKENVAULT_JOURNAL": "off"] : [:])
            guard result.code == 0 else {
                report.note("journal cost: not measured (refresh-all exited \(result.code))")
                return
            }
            (off
                ? { without.append(Date().timeIntervalSince(started)) }
                : { with.append(Date().timeIntervalSince(started)) })()
        }
        let median = { (xs: [Double]) in xs.sorted()[xs.count / 2] }
        report.note(
            String(
                format:
                    "journal cost: refresh-all of %d accounts at latency 0 (SQLite on local disk, concurrency %d), median of 3: %.2f s with the journal, %.2f s without (%+.0f%%)",
                accounts, concurrency, median(with), median(without), (median(with) / median(without) - 1) * 100))
    }

    static func scenario(_ fault: Fault, _ report: Report, _ options: Options, journalOff: Bool) {
        let title = "store failure (\(fault))"
        var server: PostgresServer?
        var database = ""
        if fault.isPostgres {
            guard PostgresServer.findBinaries() != nil else {
                report.check(false, "\(title): PostgreSQL's binaries are installed")
                return
            }
            do {
                server = try PostgresServer.start()
                database = try server!.createDatabase(prefix: "storefail")
            } catch {
                report.check(false, "\(title): a throwaway server starts", "\(error)")
                server?.stop()
                return
            }
        } else if geteuid() != 0 {
            report.note("\(title): skipped, mounting a tmpfs needs root")
            return
        }
        defer { server?.stop() }
        let ws = Workspace("storefail", tokenvault: options.tokenvault)
        defer { ws.remove() }
        if journalOff { ws.environment["TOKENVAULT_JOURNAL"] = "off" }
        let mountPoint = ws.vaultDirectory
        // A file system that turns read-only under open files: `mount -o remount,ro` refuses (EBUSY) while SQLite
        // holds the vault open for writing, so an ext4 image mounted errors=remount-ro is made to report an error,
        // as a failing disk does.
        let image = ws.dir + "/disk.img"
        let mountImage = "mount -o loop,errors=remount-ro '\(image)' '\(mountPoint)' && chmod 0700 '\(mountPoint)'"
        if let server {
            ws.environment["TOKENVAULT_VAULT"] = server.location(database: database)
        } else {
            try? FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let mounted =
                if case .readOnly = fault {
                    shell("truncate -s 32M '\(image)' && mkfs.ext4 -q -F '\(image)' && " + mountImage)
                } else {
                    shell("mount -t tmpfs -o size=16m,mode=0700 tmpfs '\(mountPoint)'")
                }
            guard mounted else {
                report.check(false, "\(title): a file system is mounted at \(mountPoint)")
                return
            }
        }
        defer { if server == nil { _ = shell("umount '\(mountPoint)' || umount -l '\(mountPoint)'") } }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .on, latency: 0.3, accessTokenLifetime: 3600) } catch {
            report.check(false, "\(title): sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "\(title): vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: accounts, prefix: "s"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "\(title): \(accounts) sandbox pairs imported")
            return
        }
        let ledger = pairs.map { (name: $0.account, refresh: $0.refresh) }
        let requestsBefore = sandbox.tokenRequests
        // A permanent failure (the disk stays full, the server stays down) gives up after --store-wait.
        var arguments = ["refresh-all", "--skip-recent", "0", "--concurrency", "\(concurrency)"]
        switch fault {
        case .diskFull, .readOnly: arguments += ["--store-wait", "10s"]
        default: break
        }
        guard let run = try? ws.spawn(arguments) else {
            report.check(false, "\(title): refresh-all starts")
            return
        }
        // About 2 s in: some 50 refreshes answered (8 at a time, 300 ms each).
        _ = waitUntil(timeout: 60) { sandbox.tokenRequests >= requestsBefore + 50 || !run.isRunning }
        let faultAt = Date()
        var requestsAtFault = sandbox.tokenRequests
        var injected = true
        switch fault {
        case .restart: injected = (try? server!.restart()) != nil
        case .terminate:
            injected =
                (try? server!.psql(
                    database,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )) != nil
        case .stop:
            injected = (try? server!.pause()) != nil
            requestsAtFault = sandbox.tokenRequests
        case .diskFull: injected = shell("dd if=/dev/zero of='\(mountPoint)/filler' bs=64k 2>/dev/null; true")
        case .readOnly:
            injected = shell(
                "dev=$(findmnt -no SOURCE '\(mountPoint)') && echo tokenvault-faults > /sys/fs/ext4/${dev##*/}/trigger_fs_error && findmnt -no OPTIONS '\(mountPoint)' | grep -q '^ro\\|emergency_ro'"
            )
        }
        var requestsWhileDown = 0
        if case .stop(let seconds) = fault {
            // The server comes back after `seconds`, whether the run is still waiting for it or has given up.
            _ = waitUntil(timeout: TimeInterval(seconds)) { !run.isRunning }
            let left = Double(seconds) - Date().timeIntervalSince(faultAt)
            if left > 0 { usleep(useconds_t(left * 1_000_000)) }
            requestsWhileDown = sandbox.tokenRequests - requestsAtFault
            injected = injected && (try? server!.resume()) != nil
        }
        let result = run.closeStdinAndWait()
        let requestsAtEnd = sandbox.tokenRequests
        // The fault ends: the disk freed or writable again.
        switch fault {
        case .diskFull: _ = shell("rm -f '\(mountPoint)/filler'")
        case .readOnly:
            injected =
                injected
                && shell("umount '\(mountPoint)' && (e2fsck -fy '\(image)' >/dev/null 2>&1; true) && " + mountImage)
        default: break
        }
        report.check(injected, "\(title): the fault was injected and undone")
        _ = sandbox.settle()
        let lines = result.err.split(separator: "\n").filter { $0.hasPrefix("tokenvault: ") }
        report.note(
            "\(title): refresh-all exited \(result.code) after \(requestsAtEnd - requestsBefore) refreshes, \(lines.count) tokenvault: lines: \(shortDescription(lines.prefix(2).joined(separator: " / "), limit: 900))"
        )
        report.check(
            [0, 1].contains(result.code) && !result.err.contains("Fatal error"),
            "\(title): refresh-all exits 0 (rode it out) or 1 (the store failed), no crash", "exit \(result.code)")
        report.check(
            lines.count <= 3, "\(title): the failure is said in a line or two, not one per account",
            "\(lines.count) lines")
        if case .stop = fault {
            // Once the store failed, only refreshes already in flight may spend a refresh token.
            report.check(
                requestsWhileDown <= 2 * concurrency,
                "\(title): no more refresh tokens spent while the server was down (at most the \(concurrency) in flight)",
                "\(requestsWhileDown) sent after the server stopped")
        }
        // Before any other command: an account whose newest pair is not in the store is not shown `ok`.
        let chains = sandbox.rotationChains(ledger)
        guard let listed = ws.listed() else {
            report.check(false, "\(title): list --json works once the store is back")
            return
        }
        var shownOK: [String] = []
        for (name, _) in ledger {
            guard let chain = chains[name], let entry = listed[name] else { continue }
            if !holdsNewest(chain, entry.accessExpiresAt) && entry.state == "ok" { shownOK.append(name) }
        }
        report.check(
            shownOK.isEmpty, "\(title): no account whose newest pair is not in the store is listed ok",
            "\(shownOK.count) listed ok: \(shownOK.prefix(3).joined(separator: ", "))")
        // And `check` (what --notify tells) names each of them.
        let missing = ledger.map(\.name).filter { name in
            chains[name].map { !holdsNewest($0, listed[name]?.accessExpiresAt) } ?? false
        }
        let checked = ws.run(["check", "--json"])
        let named = Set(
            ((try? JSONSerialization.jsonObject(with: Data(checked.out.utf8))) as? [[String: Any]] ?? [])
                .filter { $0["event"] as? String == "pair-not-stored" }.compactMap { $0["account"] as? String })
        report.check(
            Set(missing).isSubset(of: named) && (missing.isEmpty || checked.code == 5),
            "\(title): check names every account whose newest pair is not in the store (pair-not-stored, exit 5)",
            "\(missing.count) missing, \(named.count) named, exit \(checked.code)")
        // One more command, then every pair the provider handed out is in the store.
        let next = ws.run(["token", ledger[0].name])
        let after = ws.listed() ?? [:]
        var spent = 0
        var lost: [String] = []
        var twice: [String] = []
        // (A pair's refresh token presented and refused counts as spent: its answer never came, nothing to store.)
        for (name, _) in ledger {
            guard let chain = chains[name] else {
                lost.append(name)
                continue
            }
            spent += chain.count - 1
            if !holdsNewest(chain, after[name]?.accessExpiresAt) { lost.append(name) }
            if chain.contains(where: { $0.uses > 1 }) { twice.append(name) }
        }
        report.check(
            next.code == 0 && lost.isEmpty,
            "\(title): after one more command every pair the provider handed out is in the store (\(spent) spent at the provider, \(spent - lost.count) stored)",
            lost.isEmpty
                ? ""
                : "\(lost.count) lost: \(lost.prefix(3).joined(separator: ", ")); token exited \(next.code): \(shortDescription(next.err, limit: 200))"
        )
        report.check(twice.isEmpty, "\(title): no refresh token sent twice", twice.prefix(3).joined(separator: ", "))
        let final = Kills.refreshAll(ws)
        report.check(
            final.code == 0 && final.count("refreshed") == accounts,
            "\(title): the next refresh-all refreshes every account, none refused (\(final.count("refreshed"))/\(accounts))",
            final.code == 0 ? "" : "exit \(final.code): \(shortDescription(final.stderr))")
        let audit = ws.run(["audit", "--verify"])
        report.check(audit.code == 0, "\(title): audit --verify ok", audit.code == 0 ? "" : shortDescription(audit.err))
    }

    /// Whether the stored access-token expiry is that of the newest answer in the account's chain (the imported
    /// pair lapses in two weeks, each refreshed one in an hour, so they cannot be mistaken).
    static func holdsNewest(_ chain: [RefreshTokenLink], _ stored: Date?) -> Bool {
        guard let stored else { return false }
        // Not refreshed: it holds the imported pair (the sandbox's record of it has another expiry).
        if chain.count == 1 { return chain[0].uses == 0 }
        guard let newest = chain.last?.accessExpiresAt else { return false }
        return abs(newest.timeIntervalSince(stored)) < 600 && chain.last?.uses == 0
    }

    @discardableResult
    static func shell(_ command: String) -> Bool {
        ((try? runProcess("/bin/sh", ["-c", command], environment: ProcessInfo.processInfo.environment, timeout: 60))?
            .code ?? -1) == 0
    }
}
