// swift-tools-version:6.1
import PackageDescription

// Dependency direction: CSodium <- VaultCrypto; VaultStore (opaque sealed bytes, no crypto);
// VaultOAuth (knows neither crypto nor SQL); TokenVaultCore ties them together into the vault's logic;
// TokenVaultCLI parses and presents; `tokenvault` is a thin main.
let package = Package(
    name: "tokenvault",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tokenvault", targets: ["tokenvault"]),
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
        .target(name: "VaultCrypto", dependencies: ["CSodium"]),
        .target(
            name: "VaultStore",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            // Sources/VaultStore/Migrations is a symlink to the top-level Migrations/. Every file in it is listed
            // here; a test checks that none is forgotten.
            resources: [
                .embedInCode("Migrations/v001_initial.sql"),
                .embedInCode("Migrations/v002_provider_options.sql"),
                .embedInCode("Migrations/v003_notifications.sql"),
                .embedInCode("Migrations/v004_key_slots.sql"),
            ]
        ),
        // libcurl's header (types and constants); the library itself is opened with dlopen at the first request.
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "VaultOAuth", dependencies: ["CCurl"]),
        // The agent that holds a vault's key for one user: its protocol, server and client (a KeyHolder).
        .target(name: "VaultAgent", dependencies: ["VaultCrypto"]),
        // The vault's business logic (unlocked vault, refresher, token service, audit chain); no ArgumentParser.
        .target(name: "TokenVaultCore", dependencies: ["VaultCrypto", "VaultStore", "VaultOAuth"]),
        .target(
            name: "TokenVaultCLI",
            dependencies: [
                "TokenVaultCore", "VaultCrypto", "VaultStore", "VaultOAuth", "VaultAgent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "tokenvault", dependencies: ["TokenVaultCLI"]),
        .target(name: "WebexSandbox", dependencies: ["CSodium", .product(name: "FlyingFox", package: "FlyingFox")]),
        .executableTarget(name: "webex-sandbox", dependencies: ["WebexSandbox"]),
        // Test machinery shared by the end-to-end tests, the fault suite and the benchmarks (never in tokenvault).
        .target(name: "TokenVaultLab", dependencies: ["WebexSandbox"]),
        // `make bench` and `make faults`: drive the built tokenvault against an in-process sandbox.
        .executableTarget(name: "tokenvault-bench", dependencies: ["TokenVaultLab", "WebexSandbox"]),
        .executableTarget(name: "tokenvault-faults", dependencies: ["TokenVaultLab", "WebexSandbox"]),

        .testTarget(name: "VaultCryptoTests", dependencies: ["VaultCrypto"]),
        .testTarget(name: "VaultAgentTests", dependencies: ["VaultAgent", "VaultCrypto"]),
        .testTarget(name: "VaultStoreTests", dependencies: ["VaultStore", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "VaultOAuthTests", dependencies: ["VaultOAuth", "CCurl", "WebexSandbox"]),
        .testTarget(
            name: "TokenVaultCLITests",
            dependencies: [
                "TokenVaultCLI", "TokenVaultCore", "VaultStore", "VaultCrypto", "VaultOAuth", "WebexSandbox", "TokenVaultLab",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "TokenVaultCoreTests",
            dependencies: ["TokenVaultCore", "VaultStore", "VaultCrypto", "VaultOAuth", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "WebexSandboxTests", dependencies: ["WebexSandbox"]),
        .testTarget(name: "EndToEndTests", dependencies: ["WebexSandbox", "TokenVaultLab", .product(name: "GRDB", package: "GRDB.swift")]),
    ]
)
