import Foundation

/// The `provider-sandbox` command line: a JSON configuration file and flags that override or extend it.
public struct SandboxCommandLine: Sendable, Equatable {
    public var configuration: SandboxConfiguration
    public var port: UInt16
    public var showHelp: Bool

    public static let usage = """
        usage: provider-sandbox [--config FILE] [--port N] [--shape NAME] [options]

        Serves a Webex-compatible OAuth provider (or, with --shape, another provider's look-alike) on 127.0.0.1 and
        prints its base URL as the first line of output: http://127.0.0.1:PORT/v1 for webex, http://127.0.0.1:PORT
        for the other shapes, which serve the real provider's paths. Runs until SIGINT or SIGTERM.

          --config FILE                 JSON form of SandboxConfiguration (clients, users, lifetimes, faults…)
          --port N                      port to bind on 127.0.0.1 (default 0: any free port)
          --shape NAME                  webex (default), google, microsoft, github, slack or oidc; lifetimes and
                                        rotation not set elsewhere take that provider's defaults
          --client-id ID                register one client quickly (with --client-secret, --redirect-uri, --scopes)
          --client-secret SECRET
          --redirect-uri URI            repeatable
          --scopes "A B"                the client's registered scopes, space- or comma-separated
          --latency-ms N                delay token endpoint answers by N milliseconds
          --latency-all                 apply the latency to every endpoint
          --rotation off|on|lenient|grace:S
                                        refresh token rotation (default: the shape's; off for webex)
          --access-token-lifetime S     seconds (default: the shape's; 1209599 for webex)
          --refresh-token-lifetime S    seconds (default: the shape's; 7776000 for webex)
          --429-every N                 every Nth token request answers 429 with Retry-After
          --retry-after S               the Retry-After value (default 1)
          --503-every N                 every Nth token request answers 503
          --html-garbage                token requests answer 200 with an HTML page
          --deny-consent                the user denies every authorization
          --report-scopes               include "scope" in token responses
          --device-interval S           device grant poll interval (default: the shape's; 2 for webex)
          -h, --help
        """

    /// Parses arguments (without the program name). `readFile` loads `--config`; injected so tests need no files.
    public static func parse(
        _ arguments: [String], readFile: (String) throws -> Data = { try Data(contentsOf: URL(fileURLWithPath: $0)) }
    ) throws -> SandboxCommandLine {
        var values: [String: [String]] = [:]
        var flags: Set<String> = []
        let valued: Set<String> = [
            "--config", "--port", "--client-id", "--client-secret", "--redirect-uri", "--scopes", "--latency-ms",
            "--rotation", "--access-token-lifetime", "--refresh-token-lifetime", "--429-every", "--retry-after",
            "--503-every", "--device-interval", "--shape",
        ]
        let switches: Set<String> = [
            "--latency-all", "--html-garbage", "--deny-consent", "--report-scopes", "--help", "-h",
        ]
        var index = 0
        while index < arguments.count {
            var name = arguments[index]
            var value: String?
            if let equals = name.firstIndex(of: "="), name.hasPrefix("--") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if valued.contains(name) {
                if value == nil {
                    index += 1
                    guard index < arguments.count else { throw SandboxError.invalidArgument("\(name) needs a value") }
                    value = arguments[index]
                }
                values[name, default: []].append(value!)
            } else if switches.contains(name), value == nil {
                flags.insert(name)
            } else {
                throw SandboxError.invalidArgument("unknown argument \(arguments[index]); see --help")
            }
            index += 1
        }

        func int(_ name: String) throws -> Int? {
            guard let text = values[name]?.last else { return nil }
            guard let number = Int(text), number >= 0 else {
                throw SandboxError.invalidArgument("\(name) needs a whole number, not \(text)")
            }
            return number
        }

        var shape: ProviderShape?
        if let name = values["--shape"]?.last {
            guard let named = ProviderShape(rawValue: name) else {
                throw SandboxError.invalidArgument(
                    "--shape must be one of \(ProviderShape.allCases.map(\.rawValue).joined(separator: ", ")), not \(name)"
                )
            }
            shape = named
        }
        var configuration = SandboxConfiguration(shape: shape ?? .webex)
        if let path = values["--config"]?.last {
            do {
                var data = try readFile(path)
                if let shape {
                    // The flag wins over the file's shape, and what the file leaves out takes this shape's defaults.
                    guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                        throw SandboxError.invalidConfiguration("\(path): not a JSON object")
                    }
                    object["shape"] = shape.rawValue
                    data = try JSONSerialization.data(withJSONObject: object)
                }
                configuration = try JSONDecoder().decode(SandboxConfiguration.self, from: data)
            } catch {
                throw SandboxError.invalidConfiguration("\(path): \(error)")
            }
        }
        var port: UInt16 = 0
        if let number = try int("--port") {
            guard let valid = UInt16(exactly: number) else { throw SandboxError.invalidArgument("--port out of range") }
            port = valid
        }
        if let clientId = values["--client-id"]?.last {
            guard let secret = values["--client-secret"]?.last else {
                throw SandboxError.invalidArgument("--client-id needs --client-secret")
            }
            let client = SandboxConfiguration.Client(
                clientId: clientId, clientSecret: secret, redirectURIs: values["--redirect-uri"] ?? [],
                scopes: splitScopes(values["--scopes"]?.last))
            configuration.clients.removeAll { $0.clientId == clientId }
            configuration.clients.append(client)
        } else if values["--client-secret"] != nil || values["--redirect-uri"] != nil || values["--scopes"] != nil {
            throw SandboxError.invalidArgument("--client-secret, --redirect-uri and --scopes need --client-id")
        }
        if let ms = try int("--latency-ms") { configuration.latency = Double(ms) / 1000 }
        if flags.contains("--latency-all") { configuration.latencyOnAllEndpoints = true }
        if let text = values["--rotation"]?.last {
            guard let rotation = SandboxConfiguration.Rotation(argument: text) else {
                throw SandboxError.invalidArgument("--rotation must be off, on, lenient or grace:SECONDS")
            }
            configuration.rotation = rotation
        }
        if let seconds = try int("--access-token-lifetime") { configuration.accessTokenLifetime = seconds }
        if let seconds = try int("--refresh-token-lifetime") { configuration.refreshTokenLifetime = seconds }
        if let every = try int("--429-every") { configuration.faults.tooManyRequestsEvery = every }
        if let seconds = try int("--retry-after") { configuration.faults.retryAfterSeconds = seconds }
        if let every = try int("--503-every") { configuration.faults.serviceUnavailableEvery = every }
        if flags.contains("--html-garbage") { configuration.faults.htmlGarbage = true }
        if flags.contains("--deny-consent") { configuration.faults.denyConsent = true }
        if flags.contains("--report-scopes") { configuration.reportScopes = true }
        if let seconds = try int("--device-interval") { configuration.devicePollInterval = seconds }
        return SandboxCommandLine(
            configuration: configuration, port: port, showHelp: flags.contains("--help") || flags.contains("-h"))
    }
}
