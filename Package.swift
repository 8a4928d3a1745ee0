// swift-tools-version:6.1
import PackageDescription

// Dependency direction: CSodium <- VaultCrypto; VaultStore (opaque sealed bytes, no crypto);
// VaultOAuth (knows neither crypto nor SQL); TokenVaultCore ties them together into the vault's logic;
// TokenVaultCLI parses and presents; `tokenvault` is a thin main.
let package = Package(
    name: "tokenvault",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tokenvault", targets: ["tokenvault"]),
        .executable(name: "provider-sandbox", targets: ["provider-sandbox"]),
        // The sandbox's name before it served six providers' shapes, kept for scripts that call it.
        .executable(name: "webex-sandbox", targets: ["webex-sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // libpq's header, for its types and constants only: no `link` in the module map, and no `pkgConfig: "libpq"`
        // either, because SwiftPM adds pkg-config's `--libs` (-lpq) to every product and the linker keeps it
        // (readelf showed libpq.so.5 NEEDED by tokenvault). The header is Debian libpq-dev's (shim.h). The
        // functions are loaded with dlopen at the first use of a PostgreSQL vault, so that starting tokenvault
        // (every SQLite command, --version) never loads libpq and the libraries it needs (`--version` ≤ 8 ms, see
        // BENCHMARKS.md).
        .systemLibrary(
            name: "CLibPQ",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "VaultCrypto", dependencies: ["CSodium"]),
        // The PostgreSQL schema's .sql files, embedded like the SQLite ones. A target of their own because they
        // share the SQLite files' names, and embedded resources of one target are named by file name alone.
        // Sources/PostgresSchema/Migrations is a symlink to Migrations/postgresql/; a test checks none is forgotten.
        .target(
            name: "PostgresSchema",
            resources: [
                .embedInCode("Migrations/v001_initial.sql"),
                .embedInCode("Migrations/v002_provider_options.sql"),
                .embedInCode("Migrations/v003_notifications.sql"),
                .embedInCode("Migrations/v004_key_slots.sql"),
                .embedInCode("Migrations/v005_pair_binding.sql"),
            ]
        ),
        .target(
            name: "VaultStore",
            dependencies: [
                "CLibPQ", "PostgresSchema", .product(name: "GRDB", package: "GRDB.swift"),
                // sqlite3_libversion() for `tokenvault --version` (the SQLite GRDB links, no other).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            // Sources/VaultStore/Migrations is a symlink to the top-level Migrations/. Every file in it is listed
            // here; a test checks that none is forgotten. Its postgresql/ folder belongs to PostgresSchema.
            exclude: ["Migrations/postgresql"],
            resources: [
                .embedInCode("Migrations/v001_initial.sql"),
                .embedInCode("Migrations/v002_provider_options.sql"),
                .embedInCode("Migrations/v003_notifications.sql"),
                .embedInCode("Migrations/v004_key_slots.sql"),
                .embedInCode("Migrations/v005_pair_binding.sql"),
            ]
        ),
        // libcurl's header (types and constants); the library itself is opened with dlopen at the first request.
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "VaultOAuth", dependencies: ["CCurl"]),
        // Starting a child process and awaiting its exit off the cooperative pool (no dependencies).
        .target(name: "Spawning"),
        // The agent that holds a vault's key for one user: its protocol, server and client (a KeyHolder).
        // VaultStore for VaultLocation, which names the socket of a vault's agent.
        .target(name: "VaultAgent", dependencies: ["VaultCrypto", "VaultStore", "Spawning"]),
        // The vault's business logic (unlocked vault, refresher, token service, audit chain); no ArgumentParser.
        .target(name: "TokenVaultCore", dependencies: ["VaultCrypto", "VaultStore", "VaultOAuth"]),
        // BuildInfo (a plugin below) generates the version (VERSION) and the commit that `--version` prints.
        .target(
            name: "TokenVaultCLI",
            dependencies: [
                "TokenVaultCore", "VaultCrypto", "VaultStore", "VaultOAuth", "VaultAgent", "Spawning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["BuildInfo"]
        ),
        // Runs packaging/build-info.sh before every build: no network, git only when the sources are a checkout.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        .executableTarget(name: "tokenvault", dependencies: ["TokenVaultCLI"]),
        .target(name: "ProviderSandbox", dependencies: ["CSodium", .product(name: "FlyingFox", package: "FlyingFox")]),
        .executableTarget(name: "provider-sandbox", dependencies: ["ProviderSandbox"]),
        .executableTarget(name: "webex-sandbox", dependencies: ["ProviderSandbox"]),
        // Test machinery shared by the end-to-end tests, the fault suite and the benchmarks (never in tokenvault).
        .target(name: "TokenVaultLab", dependencies: ["ProviderSandbox"]),
        // `make bench` and `make faults`: drive the built tokenvault against an in-process sandbox.
        // TokenVaultCLI and TokenVaultCore for the in-process A/B of the --json writer (`@_spi(Bench)`).
        .executableTarget(
            name: "tokenvault-bench",
            dependencies: ["TokenVaultLab", "ProviderSandbox", "TokenVaultCLI", "TokenVaultCore"]),
        .executableTarget(name: "tokenvault-faults", dependencies: ["TokenVaultLab", "ProviderSandbox"]),

        // The tests' shared helpers (a capturing console, HTTP transports that answer without a network or only on
        // loopback, a token endpoint's JSON): a target of its own, as they use Swift Testing and the vault's types.
        .target(
            name: "TokenVaultTestSupport", dependencies: ["TokenVaultCore", "VaultOAuth"], path: "Tests/TestSupport"),

        .testTarget(name: "VaultCryptoTests", dependencies: ["VaultCrypto"]),
        .testTarget(name: "VaultAgentTests", dependencies: ["VaultAgent", "VaultCrypto", "Spawning"]),
        // TokenVaultLab for its throwaway PostgreSQL server: the store contract runs on SQLite and PostgreSQL.
        .testTarget(
            name: "VaultStoreTests",
            dependencies: ["VaultStore", "TokenVaultLab", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "VaultOAuthTests", dependencies: ["VaultOAuth", "CCurl", "ProviderSandbox", "TokenVaultTestSupport"]),
        .testTarget(
            name: "TokenVaultCLITests",
            dependencies: [
                "TokenVaultCLI", "TokenVaultCore", "VaultStore", "VaultCrypto", "VaultOAuth", "ProviderSandbox",
                "TokenVaultLab",
                "TokenVaultTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "TokenVaultCoreTests",
            dependencies: [
                "TokenVaultCore", "VaultStore", "VaultCrypto", "VaultOAuth", "TokenVaultTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "ProviderSandboxTests", dependencies: ["ProviderSandbox"]),
        // VaultCrypto and TokenVaultCore: the key-slot attacker test opens an old copy's values as a removed member would.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ProviderSandbox", "TokenVaultLab", "VaultCrypto", "TokenVaultCore", "TokenVaultTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
    ]
)
