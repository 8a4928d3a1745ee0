import Foundation

/// The mark of one `make test` run (`TOKENVAULT_TEST_RUN`, set by the Makefile), put in the names of the
/// directories the tests make under the temporary directory: vault workspaces, homes, throwaway PostgreSQL servers.
/// A vault's path is on its agent's command line (`tokenvault agent run --vault PATH`) and a server's directory on
/// its postmaster's (`postgres -D DIR/data`), so the Makefile's check for processes a run left behind matches this
/// run's alone, not an agent or a server that someone else on the machine started.
public enum TestRun {
    /// Nil when unset, or when it is not 1-12 lowercase letters and digits (it goes into paths and patterns).
    public static let mark: String? = {
        guard let mark = ProcessInfo.processInfo.environment["TOKENVAULT_TEST_RUN"], (1...12).contains(mark.count),
            mark.utf8.allSatisfy({
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                    || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
            })
        else { return nil }
        return mark
    }()

    /// `prefix-`, with the run's mark after it when there is one (`prefix-MARK-`): the start of a directory name
    /// the caller completes with something random.
    public static func name(_ prefix: String) -> String {
        prefix + "-" + (mark.map { $0 + "-" } ?? "")
    }

    /// `prefix-random`, or `prefix-MARK-` and the end of `random` in the same length: a workspace's path is part of
    /// agent socket paths (`DIR/run/tokenvault/agent-DEV-INODE.sock`), which may not exceed 107 bytes, so the mark
    /// takes the place of some random characters rather than lengthening it.
    public static func name(_ prefix: String, random: String) -> String {
        guard let mark, random.count >= mark.count + 1 + 16 else { return name(prefix) + random }
        return name(prefix) + random.dropFirst(mark.count + 1)
    }
}
