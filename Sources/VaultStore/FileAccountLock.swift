import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One refresh at a time per account, across processes: an advisory lock (flock) on a file per account, which
/// the kernel releases if the process dies. It is held across the network call; no database transaction is.
///
/// The lock directory sits beside the vault's real path (two symlinked paths to one vault share it) and must be
/// ours: a directory or file another user made, a symlink, or anything writable by others could let them hold our
/// locks (blocking every refresh) or point them elsewhere. Such a lock is refused with a clear error, not waited on.
public final class FileAccountLock: RefreshLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Where a vault file's lock files go (``VaultLocation/lockDirectory``).
    public static func directory(forVault path: String) -> String { VaultLocation.file(path).lockDirectory! }

    public static func acquire(
        vaultPath: String, account: Account, timeout: TimeInterval = 300,
        sleep: @Sendable (Double) async throws -> Void
    ) async throws -> FileAccountLock {
        let dir = directory(forVault: vaultPath)
        let dirFD = try openPrivateDirectory(dir)
        defer { Glibc.close(dirFD) }
        let name = "\(account.id).lock"
        let path = "\(dir)/\(name)"
        let fd = openat(dirFD, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP { throw StoreError.unsafeLockPath(path: path, reason: "it is a symbolic link") }
            throw StoreError.lockFailed("cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        do {
            try checkOwned(fd, path: path, kind: S_IFREG, kindName: "a regular file")
        } catch {
            Glibc.close(fd)
            throw error
        }
        fchmod(fd, 0o600)
        let deadline = Date().addingTimeInterval(timeout)
        // Non-blocking tries with short sleeps: a blocking flock would park a thread of the small async pool.
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                Glibc.close(fd)
                throw StoreError.lockFailed("cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            guard Date() < deadline else {
                Glibc.close(fd)
                throw StoreError.lockBusy(
                    "account '\(account.name)' stayed locked by another tokenvault process for \(Int(timeout)) s",
                    hint: "is another refresh stuck? 'fuser \(path)' shows who holds it")
            }
            try? await Task.sleep(for: .milliseconds(15))
        }
        return FileAccountLock(fd: fd)
    }

    /// Refuses an unsafe lock directory up front, before any passphrase or refresh: one clear error (exit 1)
    /// instead of one failure per account.
    public static func checkDirectory(vaultPath: String) throws {
        Glibc.close(try openPrivateDirectory(directory(forVault: vaultPath)))
    }

    /// Creates the lock directory 0700 if needed and opens it without following a symlink; then checks, on the
    /// opened directory itself (no race with a rename), that it is ours and that no one else can write in it.
    private static func openPrivateDirectory(_ dir: String) throws -> Int32 {
        _ = mkdir(dir, 0o700)
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ELOOP || errno == ENOTDIR {
                var info = stat()
                let isLink = lstat(dir, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
                throw StoreError.unsafeLockPath(
                    path: dir, reason: isLink ? "it is a symbolic link" : "it is not a directory")
            }
            throw StoreError.lockFailed("cannot open the lock directory \(dir): \(String(cString: strerror(errno)))")
        }
        do {
            let mode = try checkOwned(fd, path: dir, kind: S_IFDIR, kindName: "a directory")
            // Ours and not writable by others, but readable: make it private (the umask may have let bits through).
            if mode & 0o077 != 0 { fchmod(fd, 0o700) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Refuses an opened lock path of the wrong kind, owned by someone else, or writable by group or others.
    @discardableResult
    private static func checkOwned(_ fd: Int32, path: String, kind: mode_t, kindName: String) throws -> mode_t {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw StoreError.lockFailed("cannot inspect \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == kind else {
            throw StoreError.unsafeLockPath(path: path, reason: "it is not \(kindName)")
        }
        guard info.st_uid == geteuid() else {
            throw StoreError.unsafeLockPath(
                path: path, reason: "it belongs to uid \(info.st_uid), not to you (uid \(geteuid()))")
        }
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            throw StoreError.unsafeLockPath(
                path: path, reason: "it is writable by group or others (mode \(String(mode, radix: 8)))")
        }
        return mode
    }

    /// Closing the descriptor releases the lock.
    public func release() { Glibc.close(fd) }
}
