import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// `make faults` (--full) and, in every `make test`, --short: drives the built tokenvault against an in-process
// provider-sandbox (and a raw-socket fake provider) and checks that faults lose nothing and leak nothing.
// Everything here runs on the main thread; the sandbox lives on the cooperative pool and is reached through
// `blockingWait`, so waiting for a child never starves the server the child talks to.

struct Options {
    var full = false
    var tokenvault = Binaries.selfDirectory + "/tokenvault"
    var parts: Set<String> = []  // empty: all
}

let usage = """
    usage: tokenvault-faults [--short|--full] [--tokenvault PATH] [--only kills,concurrency,tamper,leaks,permissions,providers,mixed,postgres,store]
      --short  (default) the quick form run by `make test` (about 2 minutes)
      --full   200 kills per mode, every bit of every sealed value, a stall past the 30 s HTTP timeout,
               a mixed vault of 5 × 60 accounts (webex, google, microsoft, github, slack) killed 50 times,
               a PostgreSQL vault refreshed by three processes at once, 50 of them killed, the server restarted once,
               and the store failing under strict rotation (PostgreSQL restarted, stopped 30 s and 5 min, sessions
               terminated; SQLite's disk full and read-only); --short: a restart and a full disk
      TOKENVAULT_FAULTS_JOURNAL=off runs the store part with tokenvault's journal switched off (its behaviour before)
    """

var options = Options()
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--short": options.full = false
    case "--full": options.full = true
    case "--tokenvault":
        guard let path = arguments.popFirst() else {
            print(usage)
            exit(2)
        }
        options.tokenvault = path
    case "--only":
        guard let list = arguments.popFirst() else {
            print(usage)
            exit(2)
        }
        options.parts = Set(list.split(separator: ",").map(String.init))
    case "-h", "--help":
        print(usage)
        exit(0)
    default:
        print("tokenvault-faults: unknown argument \(argument)\n\(usage)")
        exit(2)
    }
}

signal(SIGPIPE, SIG_IGN)
guard FileManager.default.isExecutableFile(atPath: options.tokenvault) else {
    print("tokenvault-faults: no tokenvault binary at \(options.tokenvault) (build it, or pass --tokenvault PATH)")
    exit(2)
}
guard Python.executable != nil else {
    print("tokenvault-faults: python3 is needed (its sqlite3 module checks and edits the vault file)")
    exit(2)
}

let report = Report()
let started = Date()
print("tokenvault-faults \(options.full ? "--full" : "--short") against \(options.tokenvault)")
let parts: [(String, (Report, Options) -> Void)] = [
    ("kills", Kills.run), ("concurrency", Concurrency.run), ("tamper", Tamper.run),
    ("leaks", Leaks.run), ("permissions", Permissions.run), ("providers", BadProviders.run),
    ("mixed", MixedProviders.run),
    ("postgres", PostgresFaults.run), ("store", StoreFailures.run),
]
for (name, run) in parts where options.parts.isEmpty || options.parts.contains(name) {
    let partStart = Date()
    run(report, options)
    print("   (\(name): \(since(partStart)))")
}
print("\nfaults \(options.full ? "--full" : "--short") took \(since(started))")
if !report.failures.isEmpty {
    print("failed checks:")
    for failure in report.failures { print("  - \(failure)") }
}
print("\(report.passed) passed, \(report.failed) failed")
exit(report.failed == 0 ? 0 : 1)
