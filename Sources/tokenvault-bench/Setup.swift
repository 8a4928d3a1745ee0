import Foundation
import ProviderSandbox
import TokenVaultLab

#if canImport(Glibc)
    import Glibc
#endif

/// Where things are and how children are run: a clean environment (no proxies, no real home), the release binary.
struct Bench {
    let root: String  // the repository (make's working directory)
    /// A temporary directory (0700) for vaults, seed files and the C program; `HOME` of every child.
    let workspace: Workspace
    var work: String { workspace.dir }
    var tokenvault: String { workspace.tokenvault }
    let passphraseFile: String
    let clientId = "bench-client-id"
    let clientSecret = "bench-client-secret"
    let redirectURI = "http://127.0.0.1:8765/callback"

    init(root: String) throws {
        self.root = root
        let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        let tokenvault = binDir + "/tokenvault"
        guard FileManager.default.isExecutableFile(atPath: tokenvault) else {
            throw TestFailure(
                "\(tokenvault) is missing: run 'swift build -c release --product tokenvault' first (make bench does)")
        }
        // Each vault is named per run (`environment(vault:)`); the passphrase comes from a file.
        workspace = Workspace(
            prefix: "tokenvault-bench", tokenvault: tokenvault, vault: .explicit("vault.db"),
            environment: [:], path: "/usr/bin:/bin", mode: 0o700)
        guard FileManager.default.fileExists(atPath: workspace.dir) else {
            throw TestFailure("cannot make \(workspace.dir)")
        }
        passphraseFile = workspace.dir + "/passphrase"
        workspace.environment["TOKENVAULT_PASSPHRASE_FILE"] = passphraseFile
        // BENCH_JOURNAL=off: the runs without the refresh journal (an A/B of its cost; never how tokenvault runs).
        if ProcessInfo.processInfo.environment["BENCH_JOURNAL"] == "off" {
            workspace.environment["TOKENVAULT_JOURNAL"] = "off"
        }
        // A generated passphrase; never a real one.
        try write("bench passphrase \(UInt64.random(in: 0...UInt64.max))\n", to: passphraseFile, mode: 0o600)
    }

    func environment(vault: String) -> [String: String] {
        workspace.environment(adding: ["TOKENVAULT_VAULT": vault])
    }

    func tokenvault(_ arguments: [String], vault: String, stdin: String = "", discardOutput: Bool = false) throws
        -> Measured
    {
        try runMeasured(
            tokenvault, arguments, environment: environment(vault: vault), stdin: stdin, discardOutput: discardOutput)
    }

    /// A new vault at `level` with one integration pointing at the sandbox. Returns the KDF parameters
    /// `init` reports (ops, bytes), which the C floor program then uses.
    func makeVault(_ name: String, level: String, apiBase: URL) throws -> (vault: String, ops: Int, mem: Int) {
        let vault = "\(work)/\(name)/vault.db"
        let created = try check(tokenvault(["init", "--kdf", level], vault: vault), "tokenvault init")
        // "Created vault … (Argon2id, interactive: 64 MiB, 2 passes)."
        guard let match = created.err.firstMatch(of: /(\d+) MiB, (\d+) passes/),
            let mib = Int(match.1), let ops = Int(match.2)
        else {
            throw TestFailure("cannot read the KDF parameters from: \(created.err)")
        }
        try check(
            tokenvault(
                [
                    "add", "bench", "--client-id", clientId, "--redirect-uri", redirectURI,
                    "--scopes", "spark:all", "--api-base", apiBase.absoluteString, "--client-secret-stdin",
                ],
                vault: vault, stdin: clientSecret + "\n"), "tokenvault add")
        return (vault, ops, mib << 20)
    }

    /// JSON Lines for `import --batch`.
    static func jsonl(_ pairs: [(account: String, access: String, refresh: String)]) -> String {
        var text = ""
        text.reserveCapacity(pairs.count * 260)
        for p in pairs {
            text +=
                #"{"account":"\#(p.account)","access_token":"\#(p.access)","expires_in":1209599,"refresh_token":"\#(p.refresh)","refresh_token_expires_in":7776000,"token_type":"Bearer"}"#
            text += "\n"
        }
        return text
    }

    /// `count` pairs minted by the sandbox (so they refresh), imported with one `import --batch`.
    func seedFromSandbox(_ sandbox: ProviderSandbox, vault: String, count: Int, prefix: String) async throws -> [(
        account: String, access: String, refresh: String
    )] {
        var pairs: [(account: String, access: String, refresh: String)] = []
        pairs.reserveCapacity(count)
        for i in 0..<count {
            let pair = try await sandbox.issueTokenPair(clientId: clientId, userId: SandboxConfiguration.User.sample.id)
            pairs.append((String(format: "%@-%06d", prefix, i), pair.accessToken, pair.refreshToken))
        }
        try check(
            tokenvault(["import", "--batch", "--integration", "bench"], vault: vault, stdin: Self.jsonl(pairs)),
            "tokenvault import --batch")
        return pairs
    }

    /// A tiny C program that runs only crypto_pwhash (argon2id13) and prints the seconds it took.
    func compileKDFFloor() throws -> String {
        let source = work + "/kdf_floor.c"
        let binary = work + "/kdf_floor"
        try write(
            #"""
            #include <sodium.h>
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            #include <time.h>
            int main(int argc, char **argv) {
                if (argc != 3) { fprintf(stderr, "usage: kdf_floor OPSLIMIT MEMLIMIT_BYTES\n"); return 2; }
                unsigned long long ops = strtoull(argv[1], NULL, 10);
                size_t mem = (size_t)strtoull(argv[2], NULL, 10);
                if (sodium_init() < 0) return 1;
                unsigned char key[32], salt[crypto_pwhash_SALTBYTES];
                randombytes_buf(salt, sizeof salt);
                const char *pw = "bench passphrase";
                struct timespec a, b;
                clock_gettime(CLOCK_MONOTONIC, &a);
                if (crypto_pwhash(key, sizeof key, pw, strlen(pw), salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0) return 1;
                clock_gettime(CLOCK_MONOTONIC, &b);
                printf("%.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
                return 0;
            }
            """#, to: source, mode: 0o644)
        try check(
            runMeasured(
                "/usr/bin/cc", ["-O2", "-o", binary, source, "-lsodium"], environment: ["PATH": "/usr/bin:/bin"]),
            "cc kdf_floor.c")
        return binary
    }

    /// The Python comparison's virtual environment under .build/bench-venv, with pinned packages.
    func pythonVenv() throws -> String {
        let venv = root + "/.build/bench-venv"
        let python = venv + "/bin/python"
        let env = [
            "PATH": (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": NSHomeDirectory(),
        ]
        if !FileManager.default.isExecutableFile(atPath: python) {
            let system = ["/usr/bin/env"]
            try check(runMeasured(system[0], ["python3", "-m", "venv", venv], environment: env), "python3 -m venv")
        }
        try check(
            runMeasured(
                venv + "/bin/pip",
                ["install", "-q", "--disable-pip-version-check", "-r", root + "/Tests/Bench/requirements.txt"],
                environment: env), "pip install -r Tests/Bench/requirements.txt")
        return python
    }
}

func write(_ text: String, to path: String, mode: mode_t) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(
        atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: Int(mode)])
    chmod(path, mode)
}

func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : 0
}
