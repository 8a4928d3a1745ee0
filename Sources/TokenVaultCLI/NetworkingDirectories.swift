import Foundation
import TokenVaultCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Keeps Foundation's HTTP machinery out of the user's directories.
///
/// On Linux, every `URLSessionConfiguration` (`.ephemeral` included) touches `URLCache.shared` and
/// `HTTPCookieStorage.shared`, whose first use creates `~/.cache/org.swift.foundation.URLCache/<name>/` and
/// `$XDG_DATA_HOME/<name>/`, though tokenvault's sessions use neither (no cache, no cookies). A secrets tool should
/// leave no files but its own, so the process creates both singletons first, with `HOME` and the XDG variables pointing into
/// a private temporary directory that is removed at once. Call it at the very start of `main`, before any thread
/// reads the environment.
public enum NetworkingDirectories {
    public static func keepOutOfUserDirectories() {
        #if canImport(FoundationNetworking)
        var template = Array((NSTemporaryDirectory() + "/tokenvault-foundation.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { return }
        let dir = String(cString: made)
        let names = ["HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"]
        let saved = names.map { name in getenv(name).map { String(cString: $0) } }
        for name in names { setenv(name, dir, 1) }
        _ = URLCache.shared
        _ = HTTPCookieStorage.shared
        for (name, value) in zip(names, saved) {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        try? FileManager.default.removeItem(atPath: dir)
        #endif
    }
}
