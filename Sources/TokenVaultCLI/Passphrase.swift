import Foundation
import TokenVaultCore
import VaultCrypto
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// A terminal that can ask for a passphrase without echo.
public protocol PassphraseTerminal: Sendable {
    /// Whether a terminal is there to ask on.
    var isAvailable: Bool { get }
    /// Asks once; the answer without its line ending.
    func readSecret(prompt: String) throws -> SecretBytes
}

/// Where the passphrase comes from, first found wins: `--passphrase-fd N`, `TOKENVAULT_PASSPHRASE_FILE`,
/// `$CREDENTIALS_DIRECTORY/passphrase` (systemd's `LoadCredential=passphrase:…`), `TOKENVAULT_PASSPHRASE`, then a
/// prompt on /dev/tty.
enum PassphraseSource {
    case fileDescriptor(Int32)
    case file(String)
    /// A systemd credential: systemd makes the file 0400, owned by root or by the service's user (reading it
    /// through an ACL), in a directory only the service can read.
    case credential(String)
    case environment
    case terminal(any PassphraseTerminal)

    static func resolve(fd: Int32?, context: Context) throws -> PassphraseSource {
        if let fd { return .fileDescriptor(fd) }
        if let path = context.environment["TOKENVAULT_PASSPHRASE_FILE"], !path.isEmpty { return .file(path) }
        if let directory = context.environment["CREDENTIALS_DIRECTORY"], directory.hasPrefix("/"),
            access(directory + "/passphrase", F_OK) == 0
        {
            return .credential(directory + "/passphrase")
        }
        if context.environment["TOKENVAULT_PASSPHRASE"] != nil { return .environment }
        if let terminal = context.terminal, terminal.isAvailable { return .terminal(terminal) }
        throw CLIError.noPassphraseSource
    }

    /// Where the passphrase came from, as a user would name it.
    var described: String {
        switch self {
        case .fileDescriptor(let fd): "the passphrase read from file descriptor \(fd) (--passphrase-fd)"
        case .file(let path): "the passphrase in TOKENVAULT_PASSPHRASE_FILE (\(path))"
        case .credential(let path): "the passphrase in the systemd credential \(path)"
        case .environment: "the passphrase in TOKENVAULT_PASSPHRASE"
        case .terminal: "the passphrase typed"
        }
    }

    /// What to do about a passphrase from here that opened nothing: a file or a variable says the same thing
    /// again, so "try again" would not help.
    var fixHint: String {
        switch self {
        case .fileDescriptor(let fd): "write the vault's passphrase to descriptor \(fd)"
        case .credential: "give the service the vault's passphrase as its 'passphrase' credential (LoadCredential=)"
        case .file(let path):
            "put the vault's passphrase in \(path) (a file says the same thing every time, so it was not asked again)"
        case .environment:
            "set TOKENVAULT_PASSPHRASE to the vault's passphrase, or unset it to be asked on the terminal"
        case .terminal: "run the command again to try again; the vault was not changed"
        }
    }

    /// A person typing, who may mistype and try again.
    var isTerminal: Bool {
        if case .terminal = self { return true }
        return false
    }

    /// The passphrase of an existing vault.
    func read(context: Context, prompt: String = "Vault passphrase: ") throws -> SecretBytes {
        let secret: SecretBytes
        switch self {
        // Closed once read: a program started later (`exec`, the browser) must not find it open.
        case .fileDescriptor(let fd): secret = try Self.readAll(fd: fd, closing: true, what: "file descriptor \(fd)")
        case .file(let path): secret = try Self.readFile(path)
        case .credential(let path): secret = try Self.readFile(path, ownedByRootToo: true)
        case .environment:
            secret = SecretBytes(copying: Array((context.environment["TOKENVAULT_PASSPHRASE"] ?? "").utf8))
        case .terminal(let terminal): secret = try terminal.readSecret(prompt: prompt)
        }
        guard secret.count > 0 else { throw VaultError.emptyPassphrase }
        return secret
    }

    /// A new passphrase: asked twice on a terminal, taken once from the other sources; never empty.
    func readNew(context: Context, prompt: String = "New vault passphrase: ") throws -> SecretBytes {
        guard case .terminal(let terminal) = self else { return try read(context: context) }
        let first = try terminal.readSecret(prompt: prompt)
        guard first.count > 0 else { throw VaultError.emptyPassphrase }
        let second = try terminal.readSecret(prompt: "Repeat it: ")
        guard first == second else { throw CLIError.passphraseMismatch }
        return first
    }

    /// Reads up to EOF or the first newline, so `echo pass |` and a file with a trailing newline both work.
    static func readAll(fd: Int32, closing: Bool, what: String) throws -> SecretBytes {
        defer { if closing { Glibc.close(fd) } }
        let buffer = SecretBytes(count: 4096)
        var length = 0
        let ok: Bool = buffer.withUnsafeMutableBytes { raw in
            while length < raw.count {
                let n = Glibc.read(fd, raw.baseAddress! + length, raw.count - length)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                if n == 0 { break }
                length += n
                if raw[0..<length].contains(UInt8(ascii: "\n")) { break }
            }
            return true
        }
        guard ok else {
            throw CLIError.passphraseSource(
                "cannot read the passphrase from \(what): \(String(cString: strerror(errno)))")
        }
        return buffer.withUnsafeBytes { raw in
            var end = raw[0..<length].firstIndex(of: UInt8(ascii: "\n")) ?? length
            if end > 0, raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            return SecretBytes(copying: UnsafeRawBufferPointer(rebasing: raw[0..<end]))
        }
    }

    /// A passphrase file must be the user's own and readable by no one else (0600 or 0400).
    static func readFile(_ path: String, ownedByRootToo: Bool = false) throws -> SecretBytes {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let failure = errno
            if failure == ELOOP {
                throw CLIError.passphraseSource(
                    "TOKENVAULT_PASSPHRASE_FILE \(path) is a symbolic link: a passphrase file must be the file itself",
                    hint:
                        "point TOKENVAULT_PASSPHRASE_FILE at the file the link leads to ('readlink -f \(path)'), a file of yours with mode 600"
                )
            }
            throw CLIError.passphraseSource(
                "cannot open TOKENVAULT_PASSPHRASE_FILE \(path): \(String(cString: strerror(failure)))",
                hint: failure == ENOENT ? "check the path, or unset TOKENVAULT_PASSPHRASE_FILE to be asked" : nil)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            Glibc.close(fd)
            throw CLIError.passphraseFileUnsafe(path: path, reason: "cannot stat it")
        }
        let mode = info.st_mode & 0o7777
        if info.st_uid != getuid() && !(ownedByRootToo && info.st_uid == 0) {
            Glibc.close(fd)
            throw CLIError.passphraseFileUnsafe(path: path, reason: "it is not owned by you")
        }
        if mode != 0o600 && mode != 0o400 {
            Glibc.close(fd)
            throw CLIError.passphraseFileUnsafe(
                path: path, reason: "its mode is \(String(mode, radix: 8)), not 600 or 400")
        }
        return try readAll(fd: fd, closing: true, what: path)
    }
}

// The terminal state to restore if Ctrl-C arrives while echo is off. Only the signal handler and
// DevTTY touch these, and a prompt runs on one thread at a time.
nonisolated(unsafe) private var savedTerminalState = termios()
nonisolated(unsafe) private var promptTerminalFD: Int32 = -1

/// Prompts on /dev/tty (never stdout, which may be captured by `eval $(…)`), echo off, restored on Ctrl-C.
public struct DevTTY: PassphraseTerminal {
    public init() {}

    public var isAvailable: Bool {
        let fd = Glibc.open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        if fd >= 0 {
            Glibc.close(fd)
            return true
        }
        return false
    }

    public func readSecret(prompt: String) throws -> SecretBytes {
        let fd = Glibc.open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw CLIError.noPassphraseSource }
        defer { Glibc.close(fd) }
        var state = termios()
        let haveState = tcgetattr(fd, &state) == 0
        if haveState {
            savedTerminalState = state
            promptTerminalFD = fd
            signal(SIGINT) { _ in
                tcsetattr(promptTerminalFD, TCSAFLUSH, &savedTerminalState)
                _ = Glibc.write(promptTerminalFD, "\n", 1)
                _exit(130)
            }
            var quiet = state
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL)
            tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        // The prompt only after echo is off: whoever types on seeing it is never echoed.
        _ = prompt.withCString { Glibc.write(fd, $0, strlen($0)) }
        defer {
            if haveState {
                tcsetattr(fd, TCSAFLUSH, &state)
                signal(SIGINT, SIG_DFL)
                promptTerminalFD = -1
            }
        }
        return try PassphraseSource.readAll(fd: fd, closing: false, what: "the terminal")
    }

    /// One visible line from the terminal (a pasted URL or code), else from standard input.
    @Sendable public static func readLine(prompt: String) -> String? {
        let fd = Glibc.open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        if fd < 0 {
            FileHandle.standardError.write(Data(prompt.utf8))
            return Swift.readLine()
        }
        defer { Glibc.close(fd) }
        _ = prompt.withCString { Glibc.write(fd, $0, strlen($0)) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(fd, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
            if bytes.count > 16_384 { break }
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}

extension UnlockedVault {
    /// Opens the vault with the passphrase from `source`: a person at a terminal gets three tries, as with sudo and
    /// ssh; a file, a descriptor or the environment says the same thing again, so it fails at once. Through the key
    /// slot `keySlot` only, when named, else through the first slot the passphrase opens.
    static func unlock(
        _ database: any VaultStorage, source: PassphraseSource, keySlot: String? = nil,
        context: Context
    ) throws -> UnlockedVault {
        try unlockSlot(database, source: source, keySlot: keySlot, context: context).vault
    }

    /// The same, with the slot that opened it (for the commands that change key slots).
    static func unlockSlot(
        _ database: any VaultStorage, source: PassphraseSource, keySlot: String?,
        context: Context
    ) throws -> (vault: UnlockedVault, opened: OpenedSlot) {
        do {
            return try unlockSlot(
                database, kdfParameters: context.kdfParameters, attempts: source.isTerminal ? 3 : 1,
                console: context.console, keySlot: keySlot
            ) { try source.read(context: context) }
        } catch VaultError.wrongPassphrase {
            throw refusal(database, source: source, keySlot: keySlot, context: context)
        } catch VaultError.emptyPassphrase where !source.isTerminal {
            throw CLIError.passphraseSource("\(source.described) is empty", hint: source.fixHint)
        }
    }

    /// "Wrong passphrase", saying which slot was tried and where the passphrase came from, with the hint that fits:
    /// a slot named by TOKENVAULT_KEY_SLOT left set with another member's passphrase is the usual cause on a host.
    private static func refusal(
        _ database: any VaultStorage, source: PassphraseSource, keySlot: String?,
        context: Context
    ) -> CLIError {
        if let keySlot {
            let fromEnvironment = context.environment["TOKENVAULT_KEY_SLOT"] == keySlot
            let named = fromEnvironment ? "named by TOKENVAULT_KEY_SLOT" : "named by --key-slot"
            return .passphraseSource(
                "wrong passphrase: \(source.described) does not open key slot '\(keySlot)' (\(named))",
                hint: fromEnvironment
                    ? "if it is another slot's passphrase, unset TOKENVAULT_KEY_SLOT (every slot is then tried) or set it to that slot ('tokenvault keys list' names them); else \(source.fixHint)"
                    : "if it is another slot's passphrase, leave out --key-slot or name that slot ('tokenvault keys list' names them); else \(source.fixHint)"
            )
        }
        let count = (try? database.keySlots().count) ?? 0
        let slots = count == 1 ? "the vault's key slot" : "any of the vault's \(count) key slots"
        return .passphraseSource("wrong passphrase: \(source.described) does not open \(slots)", hint: source.fixHint)
    }
}
