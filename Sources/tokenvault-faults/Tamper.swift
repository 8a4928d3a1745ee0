import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// Single-bit flips of sealed values and of the key slot's envelopes, swapped ciphertexts, an edited audit log,
/// and a wrong passphrase that must leave the file byte-identical.
enum Tamper {
    /// One stored value to flip bits of, and the command that must notice.
    struct Target {
        var title: String
        var sql: String
        var parameter: [String]
        var command: [String]
        /// Exit codes accepted as "detected".
        var accepted: Set<Int32>
        /// Text stderr must contain (the account's name), if any.
        var mustName: String?
        /// Whether the command would otherwise talk to the provider (flips must stop it before).
        var sendsRequests: Bool
    }

    static func run(_ report: Report, _ options: Options) {
        report.part(
            "Tamper",
            options.full
                ? "every single-bit flip of an account's sealed access token, sealed refresh token, the integration's sealed client secret and the key slot's three envelopes (flipped in vault.db in place, 2 workers); swapped ciphertexts; edited audit entries; wrong passphrases"
                : "single-bit flips at sampled positions (version byte, nonce, tag, ciphertext) of an account's sealed access token, sealed refresh token, the integration's sealed client secret and the key slot's three envelopes; swapped ciphertexts; edited audit entries; wrong passphrases (--full flips every bit)"
        )
        let ws = Workspace("tamper", tokenvault: options.tokenvault)
        defer { ws.remove() }
        let sandbox: Sandbox
        do { sandbox = try Sandbox(rotation: .off) } catch {
            report.check(false, "sandbox starts", "\(error)")
            return
        }
        defer { sandbox.stop() }
        if let problem = ws.setUp(apiBase: sandbox.url, client: sandbox.client) {
            report.check(false, "vault set up", problem)
            return
        }
        guard let pairs = try? sandbox.issuePairs(count: 2, prefix: "t"), ws.importPairs(pairs).code == 0 else {
            report.check(false, "sandbox pairs imported")
            return
        }
        let a = pairs[0].account
        let b = pairs[1].account
        let baseline = ws.run(["token", a])
        guard
            report.check(
                baseline.code == 0 && baseline.out.hasPrefix(pairs[0].access),
                "untampered vault: `token \(a)` returns its access token")
        else { return }
        guard Python.checkpoint(ws.vault), !FileManager.default.fileExists(atPath: ws.vault + "-wal"),
            let pristine = FileManager.default.contents(atPath: ws.vault)
        else {
            report.check(false, "vault checkpointed into one file for byte-level flips")
            return
        }

        let targets = [
            Target(
                title: "sealed access token of '\(a)'",
                sql: "SELECT hex(access_token_sealed) FROM account WHERE name = ?", parameter: [a],
                command: ["token", a], accepted: [7], mustName: "'\(a)'", sendsRequests: false),
            Target(
                title: "sealed refresh token of '\(a)'",
                sql: "SELECT hex(refresh_token_sealed) FROM account WHERE name = ?", parameter: [a],
                command: ["refresh", a], accepted: [7], mustName: "'\(a)'", sendsRequests: true),
            Target(
                title: "sealed client secret of integration 'w'",
                sql: "SELECT hex(client_secret_sealed) FROM integration WHERE name = ?", parameter: ["w"],
                command: ["refresh", a], accepted: [7], mustName: "'w'", sendsRequests: true),
            // The key slot `main`. A wrong passphrase and a damaged envelope fail the same MAC check: secretbox
            // cannot tell which input was wrong. So for the slot's sealed secret key exit 3 ("wrong passphrase") or 7
            // (malformed envelope) both count as detected; what must never happen is a success, another exit code,
            // or a write. Once that opens, the passphrase is known to be right: a flip in the master key's box or in
            // the public key and its MAC is damage, exit 7, naming the slot.
            Target(
                title: "key slot 'main': its secret key sealed under the passphrase (the passphrase envelope)",
                sql: "SELECT hex(secret_key_sealed) FROM key_slot WHERE name = ?", parameter: ["main"],
                command: ["token", a], accepted: [3, 7], mustName: nil, sendsRequests: false),
            Target(
                title: "key slot 'main': the master key sealed to its public key",
                sql: "SELECT hex(master_key_sealed) FROM key_slot WHERE name = ?", parameter: ["main"],
                command: ["token", a], accepted: [7], mustName: "key slot 'main'", sendsRequests: false),
            Target(
                title: "key slot 'main': its public key and the MAC binding it",
                sql: "SELECT hex(public_key) FROM key_slot WHERE name = ?", parameter: ["main"],
                command: ["token", a], accepted: [7], mustName: "key slot 'main'", sendsRequests: false),
        ]
        let workers = (0..<2).map { _ in Workspace("tamper-worker", tokenvault: options.tokenvault) }
        defer { workers.forEach { $0.remove() } }
        for worker in workers {
            try? FileManager.default.createDirectory(
                atPath: worker.vaultDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            _ = FileManager.default.createFile(
                atPath: worker.vault, contents: pristine, attributes: [.posixPermissions: 0o600])
        }
        for target in targets {
            flipEveryBit(
                report, target, pristine: pristine, main: ws, workers: workers, sandbox: sandbox, full: options.full)
        }

        // Ciphertexts moved to another place: the per-place subkey makes them fail to open there.
        restore(ws, pristine)
        swap(
            report, ws, pristine, "access tokens swapped between '\(a)' and '\(b)'", a, b, "access_token_sealed",
            "access_token_sealed", checks: [a, b])
        swap(
            report, ws, pristine, "access and refresh token of '\(a)' swapped", a, a, "access_token_sealed",
            "refresh_token_sealed", checks: [a])
        swap(
            report, ws, pristine, "whole pairs (access and refresh) swapped between '\(a)' and '\(b)'", a, b,
            "access_token_sealed", "access_token_sealed",
            then: (a, b, "refresh_token_sealed", "refresh_token_sealed"), checks: [a, b])

        // The audit chain: an edited or deleted entry (after dropping the append-only triggers, as an attacker would).
        for (title, script) in [
            (
                "an audit entry's outcome edited",
                "DROP TRIGGER audit_entry_no_update; UPDATE audit_entry SET outcome = outcome || ' (edited)' WHERE seq = 1;"
            ),
            ("an audit entry deleted", "DROP TRIGGER audit_entry_no_delete; DELETE FROM audit_entry WHERE seq = 1;"),
        ] {
            restore(ws, pristine)
            let edit = Python.run(
                "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
                [ws.vault, script])
            let verify = ws.run(["audit", "--verify"])
            report.check(
                edit.code == 0 && verify.code == 7 && verify.err.contains("entry"),
                "\(title): `audit --verify` exits 7", "exit \(verify.code): \(shortDescription(verify.err, limit: 200))"
            )
        }

        // A wrong passphrase changes nothing: not the file, not the WAL, not the lock directory; nothing is sent.
        restore(ws, pristine)
        _ = ws.run(["token", a])  // an ordinary run first, so the state is the one tokenvault leaves
        let before = snapshot(ws)
        let requestsBefore = sandbox.tokenRequests
        var problems: [String] = []
        for command in [
            ["token", a], ["env", a], ["refresh", a], ["refresh-all", "--skip-recent", "0"], ["audit", "--verify"],
            ["revoke", a, "--local"], ["import", "new-account", "--integration", "w"],
        ] {
            let input = command[0] == "import" ? #"{"access_token":"x","expires_in":3600,"token_type":"Bearer"}"# : ""
            let result = ws.run(command, stdin: input, env: ["TOKENVAULT_PASSPHRASE": "not the passphrase"])
            if result.code != 3 || !result.err.contains("wrong passphrase") {
                problems.append("\(command[0]): exit \(result.code) \(shortDescription(result.err, limit: 120))")
            }
            if snapshot(ws) != before { problems.append("\(command[0]) changed the vault files") }
        }
        report.check(
            problems.isEmpty && sandbox.tokenRequests == requestsBefore,
            "a wrong passphrase (token, env, refresh, refresh-all, audit --verify, revoke, import) exits 3 and leaves vault.db, -wal, -shm and locks byte-identical, nothing sent",
            problems.prefix(3).joined(separator: "; "))
    }

    /// Flips bits of `target` one at a time in the workers' copies, runs its command, checks the outcome, flips back.
    static func flipEveryBit(
        _ report: Report, _ target: Target, pristine: Data, main ws: Workspace, workers: [Workspace],
        sandbox: Sandbox, full: Bool
    ) {
        let query = Python.query(ws.vault, target.sql, target.parameter)
        guard query.code == 0, let sealed = hex(query.out), !sealed.isEmpty else {
            report.check(false, "\(target.title): read its sealed bytes", shortDescription(query.err))
            return
        }
        let offsets = pristine.offsets(of: sealed)
        guard offsets.count == 1, let base = offsets.first else {
            report.check(
                false, "\(target.title): its \(sealed.count) sealed bytes sit once in vault.db",
                "found \(offsets.count) times")
            return
        }
        let bits: [Int]
        if full {
            bits = Array(0..<(sealed.count * 8))
        } else {
            // Version byte, nonce, MAC and ciphertext each get flips (layout: 1 + 24-byte nonce + 16-byte tag + text).
            var positions = [0, Int.random(in: 1..<8)]
            positions += (0..<2).map { _ in 8 * Int.random(in: 1..<25) + Int.random(in: 0..<8) }
            positions += (0..<2).map { _ in 8 * Int.random(in: 25..<41) + Int.random(in: 0..<8) }
            positions += (0..<(target.sendsRequests ? 2 : 4)).map { _ in
                8 * Int.random(in: 41..<sealed.count) + Int.random(in: 0..<8)
            }
            bits = positions
        }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var accepted = 0, named = 0, refused = 0, modified = 0, succeeded = 0
            var codes: [Int32: Int] = [:]
            var example = ""
        }
        let results = Results()
        let requestsBefore = sandbox.tokenRequests
        let group = DispatchGroup()
        for (w, worker) in workers.enumerated() {
            group.enter()
            Thread {
                for (i, bit) in bits.enumerated() where i % workers.count == w {
                    let offset = base + bit / 8
                    var flipped = pristine
                    flipped[flipped.startIndex + offset] ^= UInt8(1 << (bit % 8))
                    _ = FileManager.default.createFile(
                        atPath: worker.vault, contents: flipped, attributes: [.posixPermissions: 0o600])
                    let result = worker.run(target.command)
                    let after = FileManager.default.contents(atPath: worker.vault)
                    let walLeft =
                        (try? FileManager.default.attributesOfItem(atPath: worker.vault + "-wal")[.size] as? Int) ?? 0
                    results.lock.withLock {
                        results.codes[result.code, default: 0] += 1
                        if result.code == 0 { results.succeeded += 1 } else { results.refused += 1 }
                        if target.accepted.contains(result.code) { results.accepted += 1 }
                        if target.accepted.contains(result.code),
                            target.mustName.map({ result.err.contains($0) }) ?? true
                        {
                            results.named += 1
                        }
                        if after != flipped || walLeft > 0 { results.modified += 1 }
                        if results.example.isEmpty
                            || (!target.accepted.contains(result.code)
                                && !results.example.hasPrefix("exit \(result.code)"))
                        {
                            results.example = "exit \(result.code): \(shortDescription(result.err, limit: 220))"
                        }
                    }
                    for suffix in ["-wal", "-shm"] { unlink(worker.vault + suffix) }
                }
                _ = FileManager.default.createFile(
                    atPath: worker.vault, contents: pristine, attributes: [.posixPermissions: 0o600])
                group.leave()
            }.start()
        }
        group.wait()
        let n = bits.count
        let codes = results.codes.sorted { $0.key < $1.key }.map { "exit \($0.key)×\($0.value)" }.joined(
            separator: ", ")
        report.check(
            results.succeeded == 0 && results.modified == 0
                && (!target.sendsRequests || sandbox.tokenRequests == requestsBefore),
            "\(target.title): all \(n) single-bit flips refused, nothing written\(target.sendsRequests ? ", nothing sent to the provider" : "")",
            "\(codes); \(results.modified) runs wrote to the file")
        let wanted = target.accepted.sorted().map(String.init).joined(separator: " or ")
        report.check(
            results.named == n,
            "\(target.title): every flip reported as exit \(wanted)\(target.mustName.map { " naming \($0)" } ?? "") (\(results.named)/\(n))",
            results.named == n ? "e.g. \(results.example)" : "\(codes); e.g. \(results.example)")
    }

    static func restore(_ ws: Workspace, _ pristine: Data) {
        for suffix in ["-wal", "-shm"] { unlink(ws.vault + suffix) }
        _ = FileManager.default.createFile(atPath: ws.vault, contents: pristine, attributes: [.posixPermissions: 0o600])
    }

    static func swap(
        _ report: Report, _ ws: Workspace, _ pristine: Data, _ title: String, _ a: String, _ b: String,
        _ columnA: String, _ columnB: String,
        then second: (String, String, String, String)? = nil, checks: [String]
    ) {
        restore(ws, pristine)
        let script = """
            import sqlite3, sys
            c = sqlite3.connect(sys.argv[1])
            args = sys.argv[2:]
            while args:
                a, b, ca, cb = args[:4]; args = args[4:]
                va = c.execute(f'SELECT {ca} FROM account WHERE name = ?', (a,)).fetchone()[0]
                vb = c.execute(f'SELECT {cb} FROM account WHERE name = ?', (b,)).fetchone()[0]
                c.execute(f'UPDATE account SET {ca} = ? WHERE name = ?', (vb, a))
                c.execute(f'UPDATE account SET {cb} = ? WHERE name = ?', (va, b))
            c.commit()
            """
        var arguments = [ws.vault, a, b, columnA, columnB]
        if let s = second { arguments += [s.0, s.1, s.2, s.3] }
        let edit = Python.run(script, arguments)
        var problems: [String] = []
        if edit.code != 0 { problems.append("python: \(shortDescription(edit.err))") }
        for account in checks {
            let result = ws.run(["token", account])
            if result.code != 7 || !result.err.contains("'\(account)'") {
                problems.append("token \(account): exit \(result.code) \(shortDescription(result.err, limit: 160))")
            }
        }
        report.check(
            problems.isEmpty,
            "\(title): detected, `token` exits 7 naming \(checks.map { "'\($0)'" }.joined(separator: " and "))",
            problems.joined(separator: "; "))
        restore(ws, pristine)
    }

    /// The vault's files and lock directory, byte for byte.
    static func snapshot(_ ws: Workspace) -> [String: Data] {
        var files: [String: Data] = [:]
        for (path, data) in ws.vaultFiles() { files[path] = data }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: ws.locksDirectory)) ?? [] {
            files[ws.locksDirectory + "/" + name] =
                FileManager.default.contents(atPath: ws.locksDirectory + "/" + name) ?? Data()
        }
        return files
    }
}
