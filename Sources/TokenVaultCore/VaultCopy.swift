import Foundation
import VaultStore

/// `tokenvault copy`: the whole vault as it is (sealed bytes, ids, key slots, the audit log with its MACs and head,
/// notification records) into a new store. No secret is opened. The source is read in one transaction; the copy is
/// read back and compared with it as a whole before it counts.
public enum VaultCopy {
    /// Copies `source` to `destination`, which must hold no vault yet (`StoreError.vaultExists` otherwise, before
    /// anything is written). A copy that fails is removed when it is a file; a half-made database is named in
    /// ``Failed``. Returns the snapshot that was copied and the copy's location for display.
    public static func copy(from source: any VaultStorage, to destination: VaultLocation) throws
        -> (snapshot: VaultSnapshot, location: String)
    {
        let snapshot = try source.snapshot()
        let copy = try VaultStores.create(destination, header: snapshot.header, auditHeadMAC: snapshot.auditHeadMAC)
        do {
            try copy.write { try $0.restore(snapshot) }
            // Read back and compared as a whole: what is in the copy is what was read, byte for byte.
            guard try copy.snapshot() == snapshot else { throw Mismatch(location: copy.location) }
            try copy.close()
        } catch {
            // A half-made copy is no vault (it has no key slot): a file is removed; a database is named.
            try? copy.close()
            if case .file(let path) = destination {
                for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
                throw error
            }
            throw Failed(error: error, location: copy.location)
        }
        return (snapshot, copy.location)
    }

    /// A copy into a database failed part way: its tables hold a half-made vault.
    public struct Failed: LocalizedError {
        public let error: any Error
        public let location: String
        public var errorDescription: String? {
            "the copy to \(location) failed (\(error.localizedDescription)); the database now holds a half-made vault: drop its tables, or the database, before copying again"
        }
    }

    /// The copy read back differs from what was copied.
    public struct Mismatch: LocalizedError {
        public let location: String
        public var errorDescription: String? {
            "the copy at \(location) does not read back as the vault that was copied"
        }
    }
}
