import CSodium
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What the vault's logic may do with the master key: seal, open and MAC under a label, and wrap the key under a
/// passphrase key. Nothing else: the key itself never leaves the holder, so the holder can live in another
/// process (an agent that keeps a vault unlocked) without the core changing.
///
/// Every operation works under a subkey derived from the master key and the label (``VaultKeys/subkey(of:label:)``),
/// so a value sealed for one place opens nowhere else.
public protocol KeyHolder: Sendable {
    /// Seals `plaintext` under the label's subkey (XSalsa20-Poly1305, random nonce).
    func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8]
    /// Opens a value sealed under the label. Throws ``VaultCryptoError/authenticationFailed`` when it was sealed
    /// under another key or label, or changed since.
    func open(_ sealed: [UInt8], label: String) throws -> SecretBytes
    /// HMAC-SHA-256 of `message` under the label's subkey.
    func mac(_ message: [UInt8], label: String) throws -> [UInt8]
    /// The master key sealed under a key derived from a passphrase (a key slot of the v1-v3 form).
    func wrapMasterKey(under passphraseKey: SecretBytes) throws -> [UInt8]
    /// The master key sealed to a key slot's public key (``SealedBox``): what `keys add`, `passwd` and `keys rotate`
    /// store, so that a later `keys rotate` can wrap its new key for the slot without its passphrase.
    func wrapMasterKey(toPublicKey publicKey: [UInt8]) throws -> [UInt8]
}

/// The master key held in this process, in guarded memory.
public final class InProcessKeyHolder: KeyHolder {
    private let master: SecretBytes

    private struct Subkeys {
        /// MAC subkeys by label: an audit chain is verified with thousands of MACs under one label, and each
        /// subkey is a guarded allocation (page protection changes) better made once.
        var macKeys: [String: SecretBytes] = [:]
        /// Guarded buffers for subkeys, made once and reused (zeroed after each use): each guarded allocation
        /// costs page-protection changes and an mlock, and a refresh-all of thousands of accounts derives several
        /// subkeys per account.
        var scratch: [SecretBytes] = []
    }
    private let subkeys = Mutex(Subkeys())

    public init(masterKey: SecretBytes) {
        precondition(masterKey.count == VaultKeys.keyBytes, "a master key is \(VaultKeys.keyBytes) bytes")
        self.master = masterKey
    }

    /// A new random master key.
    public static func generate() -> InProcessKeyHolder { InProcessKeyHolder(masterKey: VaultKeys.randomKey()) }

    public func seal(_ plaintext: SecretBytes, label: String) throws -> [UInt8] {
        try withSubkey(label) { try SecretBox.seal(plaintext, key: $0) }
    }

    public func open(_ sealed: [UInt8], label: String) throws -> SecretBytes {
        try withSubkey(label) { try SecretBox.open(sealed, key: $0) }
    }

    private func withSubkey<T>(_ label: String, _ body: (SecretBytes) throws -> T) rethrows -> T {
        let key = subkeys.withLock { $0.scratch.popLast() } ?? SecretBytes(count: VaultKeys.keyBytes)
        defer {
            key.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
            subkeys.withLock { if $0.scratch.count < 32 { $0.scratch.append(key) } }
        }
        VaultKeys.subkey(of: master, label: label, into: key)
        return try body(key)
    }

    public func mac(_ message: [UInt8], label: String) throws -> [UInt8] {
        let key = subkeys.withLock { subkeys in
            if let key = subkeys.macKeys[label] { return key }
            let key = VaultKeys.subkey(of: master, label: label)
            subkeys.macKeys[label] = key
            return key
        }
        return MAC.hmacSHA256(key: key, message: message)
    }

    public func wrapMasterKey(under passphraseKey: SecretBytes) throws -> [UInt8] {
        try SecretBox.seal(master, key: passphraseKey)
    }

    public func wrapMasterKey(toPublicKey publicKey: [UInt8]) throws -> [UInt8] {
        try SealedBox.seal(master, to: publicKey)
    }

    /// Writes the master key to a pipe, once, to the agent this process is starting (`tokenvault unlock`): the one
    /// way the key leaves a process, and only to a child of the same user that then holds it.
    public func handOff(to fd: Int32) -> Bool {
        master.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
    }

    /// Reads a master key handed off by ``handOff(to:)``: exactly ``VaultKeys/keyBytes`` bytes, then end of file.
    public static func receive(from fd: Int32) -> InProcessKeyHolder? {
        let key = SecretBytes(count: VaultKeys.keyBytes)
        let complete: Bool = key.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = read(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                offset += n
            }
            var extra: UInt8 = 0
            return read(fd, &extra, 1) == 0
        }
        return complete ? InProcessKeyHolder(masterKey: key) : nil
    }
}
