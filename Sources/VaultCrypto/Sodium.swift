import CSodium

/// The one place that initialises libsodium.
public enum Sodium {
    // A global `static let` is initialised exactly once, thread-safely (swift_once), so
    // `sodium_init` runs once per process no matter how many threads race to get here.
    // 0 = initialised now, 1 = already initialised, -1 = failure.
    private static let initResult: Int32 = sodium_init()

    /// The version of the libsodium this process runs with (the shared library loaded, not the header built
    /// against), e.g. "1.0.18". Needs no `sodium_init`.
    public static var libraryVersion: String { String(cString: sodium_version_string()) }

    /// Runs `sodium_init` once. Throws `.sodiumUnavailable` if it failed.
    public static func ensureInitialized() throws {
        if initResult < 0 { throw VaultCryptoError.sodiumUnavailable }
    }

    /// For non-throwing entry points (random bytes, secure allocation): continuing without an
    /// initialised library would mean unguarded memory or an unseeded generator, so stop instead.
    static func requireInitialized() {
        guard initResult >= 0 else { fatalError("libsodium could not be initialised (sodium_init failed)") }
    }
}
