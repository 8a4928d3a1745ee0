import Foundation

/// Which vault locations name a PostgreSQL database, and what tokenvault accepts in them.
///
/// A location is a PostgreSQL one when it is a URI (`postgresql://…`, `postgres://…`) or a libpq connection
/// string that starts with `service=`, `host=` or `dbname=`. It must carry no password: connection secrets come
/// from libpq's own sources (~/.pgpass, PGPASSWORD, the service file), never from argv or TOKENVAULT_VAULT, so
/// a location can be printed in every message as it is.
public enum PostgresLocation {
    /// The rule is ``VaultLocation``'s: `VaultLocation(location)` is `.postgres`.
    public static func isPostgreSQL(_ location: String) -> Bool { VaultLocation(location).isPostgreSQL }

    /// The location with its secrets replaced by `***`: a URI's password (`user:***@host`) and the value of every
    /// `password` or `sslpassword` option, in a URI's query or in `key=value` words. Done on the text itself, not
    /// through libpq, so that a location libpq cannot parse is named without its password too.
    public static func withoutSecrets(_ location: String) -> String {
        var text = location
        for (pattern, template) in redactions {
            text = pattern.stringByReplacingMatches(
                in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
        }
        return text
    }

    /// `text` (a message about `location`, such as libpq's) with the location and each of its secret values
    /// replaced: by the location without secrets, and by `***`.
    static func scrubbed(_ text: String, location: String) -> String {
        var text = text.replacingOccurrences(of: location, with: withoutSecrets(location))
        for value in secretValues(location) {
            for form in Set([value, value.removingPercentEncoding ?? value]) where !form.isEmpty {
                text = text.replacingOccurrences(of: form, with: "***")
            }
        }
        return text
    }

    /// The values `withoutSecrets` removes.
    static func secretValues(_ location: String) -> [String] {
        redactions.flatMap { pattern, _ in
            pattern.matches(in: location, range: NSRange(location.startIndex..., in: location)).compactMap { match in
                Range(match.range(at: 2), in: location).map { String(location[$0]) }
            }
        }
    }

    /// Each pattern's group 1 is kept, group 2 is the secret.
    private static let redactions: [(NSRegularExpression, String)] = [
        // postgresql://user:PASSWORD@host: libpq takes the user information up to the first '@' before any '/'.
        (try! NSRegularExpression(pattern: #"^((?i:postgres(?:ql)?)://[^:@/]*):([^@/]*)@"#), "$1:***@"),
        // password=VALUE and sslpassword=VALUE: a URI parameter (up to '&') or a key=value word, quoted or not.
        (try! NSRegularExpression(pattern: #"((?i:\b(?:ssl)?password)\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]*)"#), "$1***"),
    ]

    /// The location's options (libpq's own parser), refusing one that carries a secret. The error does not
    /// repeat the location: it holds the secret.
    static func checkedOptions(_ location: String, pq: LibPQ) throws -> [String: String] {
        let options = try pq.parse(location)
        if let secret = options.first(where: { $0.isSecret && !$0.value.isEmpty }) {
            throw StoreError.postgres(
                "the PostgreSQL vault location carries a \(secret.keyword); tokenvault takes no connection secret from --vault or TOKENVAULT_VAULT (every local user can read a command line)",
                hint:
                    "remove it from the location and give it to libpq in ~/.pgpass (mode 0600), PGPASSWORD or a service file (PGSERVICEFILE)"
            )
        }
        return Dictionary(options.map { ($0.keyword, $0.value) }, uniquingKeysWith: { $1 })
    }

    /// A warning when the connection may travel unencrypted to another machine: sslmode disable, allow or
    /// prefer (libpq's default) with a host that is not this machine. `options` are the location's (or the live
    /// connection's) and `environment` supplies what they leave out, as libpq would.
    static func sslWarning(options: [String: String], environment: [String: String]) -> String? {
        func given(_ key: String, _ variable: String) -> String? {
            if let value = options[key], !value.isEmpty { return value }
            if let value = environment[variable], !value.isEmpty { return value }
            return nil
        }
        let sslmode = given("sslmode", "PGSSLMODE") ?? "prefer"
        guard ["disable", "allow", "prefer"].contains(sslmode) else { return nil }
        let hosts = [given("host", "PGHOST"), given("hostaddr", "PGHOSTADDR")].compactMap { $0 }
            .flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        guard let remote = hosts.first(where: { !isLocal($0) }) else { return nil }
        return
            "the connection to the PostgreSQL server \(remote) may travel unencrypted (sslmode=\(sslmode)): the server only ever sees sealed bytes, but the vault's metadata and the database password could be read or changed on the way; use sslmode=verify-full (or require) in the location or PGSSLMODE"
    }

    /// A unix socket directory, or a loopback name or address.
    static func isLocal(_ host: String) -> Bool {
        host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") || host == "localhost" || host == "::1"
            || host.hasPrefix("127.") || host == "[::1]"
    }
}
