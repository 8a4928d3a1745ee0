import Foundation
import Testing

@testable import VaultStore

/// ``VaultLocation``: which locations name PostgreSQL, how they are named in messages, which spellings are one
/// vault, and where a vault's local state goes.
@Suite struct VaultLocationTests {
    @Test func parsesFilesAndPostgreSQL() {
        for text in [
            "postgresql:///vault", "postgres://db.example/vault", "POSTGRESQL://h/v", "Postgres://h/v",
            "service=tokenvault", "host=/run/postgresql dbname=vault", "dbname=vault",
        ] {
            #expect(VaultLocation(text) == .postgres(text), "\(text)")
            #expect(VaultLocation(text).isPostgreSQL)
        }
        // The agent used to take anything not starting with '/' for a database: these are files.
        for text in [
            "/home/a/vault.db", "vault.db", "postgresql.db", "./service=x", "sqlite:///x", " host=x", ":memory:",
        ] {
            #expect(VaultLocation(text) == .file(text), "\(text)")
            #expect(!VaultLocation(text).isPostgreSQL)
        }
    }

    @Test func resolvesTheOptionThenTheEnvironmentThenTheDefault() {
        let env = ["TOKENVAULT_VAULT": "env.db", "HOME": "/home/a", "XDG_DATA_HOME": "/data"]
        #expect(
            VaultLocation.resolve(option: "opt.db", environment: env, currentDirectory: "/work")
                == .file("/work/opt.db"))
        #expect(VaultLocation.resolve(option: "", environment: env, currentDirectory: "/work") == .file("/work/env.db"))
        #expect(
            VaultLocation.resolve(
                option: nil, environment: ["TOKENVAULT_VAULT": "/abs/v.db"], currentDirectory: "/work")
                == .file("/abs/v.db"))
        #expect(
            VaultLocation.resolve(option: nil, environment: ["HOME": "/home/a", "XDG_DATA_HOME": "/data"])
                == .file("/data/tokenvault/vault.db"))
        // A relative XDG_DATA_HOME is ignored, as the XDG specification says.
        #expect(
            VaultLocation.resolve(option: nil, environment: ["HOME": "/home/a", "XDG_DATA_HOME": "data"])
                == .file("/home/a/.local/share/tokenvault/vault.db"))
        // A PostgreSQL location is not made "absolute" (it would become a file named 'postgresql:' here).
        #expect(
            VaultLocation.resolve(option: "service=tv", environment: [:], currentDirectory: "/work")
                == .postgres("service=tv"))
        #expect(
            VaultLocation.resolve(
                option: nil, environment: ["TOKENVAULT_VAULT": "postgres://h/v"], currentDirectory: "/work")
                == .postgres("postgres://h/v"))
    }

    @Test func namesAPostgreSQLLocationWithoutItsPassword() {
        #expect(
            VaultLocation("postgresql://alice:pw@db.example:5432/vault").name
                == "postgresql://alice:***@db.example:5432/vault")
        #expect(VaultLocation("host=db password=pw dbname=vault").name == "host=db password=*** dbname=vault")
        #expect("\(VaultLocation("postgresql://db/v?password=pw"))" == "postgresql://db/v?password=***")
        // The text a store is opened with keeps it (tokenvault then refuses it, without repeating it).
        #expect(VaultLocation("postgresql://alice:pw@db/v").text == "postgresql://alice:pw@db/v")
        // A file is named as it is, whatever its name contains.
        #expect(VaultLocation("/home/a/password=x/vault.db").name == "/home/a/password=x/vault.db")
    }

    @Test func twoPathsToOneFileAreOneVault() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/tokenvault-location-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/real/vault.db", contents: Data())
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/real")
        let real = VaultLocation.file(dir + "/real/vault.db")
        let linked = VaultLocation.file(dir + "/link/vault.db")
        let resolvedDir = try #require(VaultLocation.realPath(dir))

        // Spelled differently: not equal, but the same vault, sharing its locks, journal and agent.
        #expect(real != linked)
        #expect(real.isSameVault(as: linked))
        #expect(real.lockDirectory == resolvedDir + "/real/vault.db.locks")
        #expect(linked.lockDirectory == real.lockDirectory)
        #expect(linked.journalKey == real.journalKey)
        #expect(real.agentIdentity() != nil && linked.agentIdentity() == real.agentIdentity())
        #expect(real.fileDirectory == dir + "/real")

        // Another file is another vault; a file that is not there has no agent identity yet, and keeps its spelling.
        let other = VaultLocation.file(dir + "/real/other.db")
        #expect(!other.isSameVault(as: real))
        #expect(other.agentIdentity() == nil)
        #expect(other.canonical == other)
        // A file replaced under the same path is another vault for the agent.
        let before = real.agentIdentity()
        // (The old file kept under another name, so that its inode cannot be reused.)
        try FileManager.default.moveItem(atPath: dir + "/real/vault.db", toPath: dir + "/real/old.db")
        _ = FileManager.default.createFile(atPath: dir + "/real/vault.db", contents: Data())
        #expect(real.agentIdentity() != before)
    }

    @Test func aPostgreSQLLocationIsOneVaultAsSpelled() {
        let a = VaultLocation("postgresql://db/vault")
        let b = VaultLocation("postgres://db/vault")
        #expect(a.isSameVault(as: VaultLocation("postgresql://db/vault")))
        #expect(!a.isSameVault(as: b))
        #expect(a.lockDirectory == nil && a.fileDirectory == nil)
        #expect(a.journalKey == "postgresql://db/vault")
        let identity = a.agentIdentity()
        #expect(
            identity?.hasPrefix("db-") == true && identity == VaultLocation("postgresql://db/vault").agentIdentity())
        #expect(b.agentIdentity() != identity)
    }
}
