import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

extension KDFParameters.Level: ExpressibleByArgument {}

extension TokenVault {
    struct Init: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new, empty vault protected by a passphrase.",
            discussion: "The passphrase is asked twice on the terminal (or taken once from --passphrase-fd, TOKENVAULT_PASSPHRASE_FILE or TOKENVAULT_PASSPHRASE).")

        @OptionGroup var global: GlobalOptions

        @Option(help: "Argon2id cost: interactive (64 MiB, ~0.15 s), moderate (256 MiB, ~1 s) or sensitive (1 GiB, ~9 s).")
        var kdf: KDFParameters.Level = .moderate

        @Flag(help: "Accept a passphrase shorter than 8 characters.")
        var allowWeakPassphrase = false

        func run(_ context: Context) async throws {
            let path = vaultPath(context)
            if FileManager.default.fileExists(atPath: path) { throw StoreError.vaultExists(path: path) }
            let source = try PassphraseSource.resolve(fd: global.passphraseFd, context: context)
            let passphrase = try source.readNew(context: context)
            try PassphraseStrength.check(passphrase, allowWeak: allowWeakPassphrase, context: context)
            let parameters = context.kdfParameters(kdf)
            let (header, auditHead) = try UnlockedVault.newHeader(passphrase: passphrase, parameters: parameters, now: context.now())
            let database = try VaultDatabase.create(at: path, header: header, auditHeadMAC: auditHead)
            try database.close()
            context.console.err("Created vault \(path) (Argon2id, \(kdf.rawValue): \(parameters.memLimit >> 20) MiB, \(parameters.opsLimit) passes).\n")
        }
    }

    struct Passwd: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the vault passphrase (re-seals the master key only: one small write).")

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Read the new passphrase from this open file descriptor.", valueName: "n"))
        var newPassphraseFd: Int32?

        @Option(help: "New Argon2id cost (default: keep the current one).")
        var kdf: KDFParameters.Level?

        func run(_ context: Context) async throws {
            let vault = try unlock(context)
            let newSource: PassphraseSource
            if let fd = newPassphraseFd {
                newSource = .fileDescriptor(fd)
            } else if let terminal = context.terminal, terminal.isAvailable {
                newSource = .terminal(terminal)
            } else {
                throw CLIError.usage("a new passphrase is needed and there is no terminal to ask on",
                                     hint: "pass it with --new-passphrase-fd N")
            }
            let passphrase = try newSource.readNew(context: context)
            let current = try UnlockedVault.storedParameters(try vault.database.header())
            var parameters = kdf.map(context.kdfParameters) ?? current
            parameters.salt = Random.bytes(parameters.salt.count)
            try vault.changePassphrase(to: passphrase, parameters: parameters, now: context.now())
            context.console.err("Passphrase changed.\n")
        }
    }

    struct Audit: VaultCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the audit log of token lifetime resets; --verify checks its MAC chain.",
            discussion: "Listing needs no passphrase; --verify does (exit 7 when an entry was edited, reordered or deleted).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only this account's entries.", completion: .accountNames)
        var account: String?

        @Flag(help: "Print JSON.")
        var json = false

        @Flag(help: "Check every entry's chained MAC and the head record.")
        var verify = false

        @Option(help: ArgumentHelp("With --verify: a head printed earlier (by audit --verify or refresh-all --json) that the log must still contain; detects a vault rolled back to an older copy.", valueName: "hex"))
        var expectHead: String?

        func validate() throws {
            if let expectHead {
                guard verify else { throw ValidationError("--expect-head needs --verify") }
                guard expectHead.count == 64, expectHead.allSatisfy(\.isHexDigit) else {
                    throw ValidationError("--expect-head takes the 64 hex digits printed as the audit head")
                }
            }
        }

        func run(_ context: Context) async throws {
            if verify {
                let vault = try unlock(context)
                let result = try vault.verifyAudit(expectHead: expectHead)
                for problem in result.problems { context.console.err("tokenvault: audit: \(problem)\n") }
                if json {
                    context.console.out(Format.json([
                        "entries": result.count, "intact": result.problems.isEmpty, "problems": result.problems,
                        "head": result.head, "head_seq": result.headSeq,
                    ]) + "\n")
                } else if result.problems.isEmpty {
                    context.console.out("audit log intact: \(result.count) entries, head \(result.head) (entry \(result.headSeq))\n")
                }
                if !result.problems.isEmpty {
                    throw CLIError.integrity("the audit log failed verification (\(result.problems.count) problem\(result.problems.count == 1 ? "" : "s"))",
                                             hint: "the vault file was modified outside tokenvault; restore it from a backup")
                }
                return
            }
            let database = try openDatabase(context)
            let entries = try database.auditEntries(account: account)
            // A revoked account keeps its entries; a name that never was an account is a typo, as elsewhere.
            if let account, entries.isEmpty { _ = try database.account(named: account) }
            if json {
                context.console.out(Format.json(entries.map(Self.jsonObject)) + "\n")
                return
            }
            var rows = [["SEQ", "TIME", "ACCOUNT", "EVENT", "TRIGGER", "OUTCOME", "ACCESS EXPIRY", "REFRESH EXPIRY", "RT CHANGED"]]
            for e in entries {
                let d = e.draft
                rows.append([
                    String(e.seq), Format.timestamp(d.at), d.account, d.event.rawValue, d.trigger, d.outcome,
                    Self.change(d.accessExpiresBefore, d.accessExpiresAfter),
                    Self.change(d.refreshExpiresBefore, d.refreshExpiresAfter),
                    d.refreshTokenChanged.map { $0 ? "yes" : "no" } ?? "-",
                ])
            }
            context.console.out(Table.render(rows))
        }

        static func change(_ before: Date?, _ after: Date?) -> String {
            "\(before.map(Format.timestamp) ?? "-") -> \(after.map(Format.timestamp) ?? "-")"
        }

        static func jsonObject(_ entry: AuditEntry) -> [String: Any] {
            let d = entry.draft
            var object: [String: Any] = [
                "seq": entry.seq, "at": Format.timestamp(d.at), "account": d.account, "event": d.event.rawValue,
                "trigger": d.trigger, "outcome": d.outcome,
            ]
            object["integration"] = d.integration
            object["access_expires_before"] = d.accessExpiresBefore.map(Format.timestamp)
            object["access_expires_after"] = d.accessExpiresAfter.map(Format.timestamp)
            object["refresh_expires_before"] = d.refreshExpiresBefore.map(Format.timestamp)
            object["refresh_expires_after"] = d.refreshExpiresAfter.map(Format.timestamp)
            object["refresh_token_changed"] = d.refreshTokenChanged
            object["detail"] = d.detail
            return object
        }
    }
}

/// A copied vault file can be attacked offline at the KDF's pace: a short passphrase is the weak point.
enum PassphraseStrength {
    static let minimum = 8
    static let recommended = 12

    /// Refuses fewer than `minimum` characters (unless `allowWeak`) and warns below `recommended`.
    static func check(_ passphrase: SecretBytes, allowWeak: Bool, context: Context) throws {
        let length = characters(passphrase)
        if length < minimum && !allowWeak { throw CLIError.weakPassphrase(characters: length, minimum: minimum) }
        if length < recommended {
            context.console.err("tokenvault: warning: the passphrase has only \(length) character\(length == 1 ? "" : "s"); \(recommended) or more (a few random words) make a copied vault file much harder to open\n")
        }
    }

    /// UTF-8 characters, counted without turning the secret into a String: every byte that does not continue one.
    static func characters(_ passphrase: SecretBytes) -> Int {
        passphrase.withUnsafeBytes { raw in raw.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } }
    }
}

/// Left-aligned columns for human output.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        // Widths in Unicode scalars: close enough for names and emails, and far cheaper than counting
        // grapheme clusters twice per cell of a 100,000-row list.
        let counts = rows.map { $0.map(\.unicodeScalars.count) }
        var widths = [Int](repeating: 0, count: first.count)
        for row in counts { for (i, n) in row.enumerated() { widths[i] = max(widths[i], n) } }
        var out = ""
        out.reserveCapacity(rows.count * (widths.reduce(0, +) + 2 * widths.count + 1))
        let spaces = String(repeating: " ", count: (widths.max() ?? 0) + 2)
        for (row, rowCounts) in zip(rows, counts) {
            for (i, cell) in row.enumerated() {
                out += cell
                if i < row.count - 1 { out += spaces.prefix(widths[i] - rowCounts[i] + 2) }
            }
            out += "\n"
        }
        return out
    }
}
