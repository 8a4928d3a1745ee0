import Foundation
import TokenVaultCore

/// Renders a variable assignment for a shell or tool. dotenv values are written unquoted and must be tokens
/// (`isB64Token`); for the shells, values are single-quoted, so `eval "$(tokenvault env a)"`
/// sets exactly the stored value, whatever it holds. The unquoted `eval $(…)` also works for every real token;
/// the shell splits and globs the output before eval sees it, so a value with runs of spaces or a lone `*`
/// survives only the quoted form.
enum EnvExport {
    enum Style: String, CaseIterable {
        case sh, fish, dotenv, json
    }

    static func checkVariableName(_ name: String) throws {
        let valid =
            !name.isEmpty && name.count <= 128
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
            && !(name.first!.isNumber)
        guard valid else {
            throw CLIError.usage(
                "invalid environment variable name \(Format.quoted(name))",
                hint: "use letters, digits and '_', not starting with a digit")
        }
        if let reason = VariableNames.reservedReason(name) {
            throw CLIError.usage(
                "refusing environment variable name \(Format.quoted(name)): \(reason)",
                hint: "choose a name of your own, e.g. WEBEX_ACCESS_TOKEN")
        }
    }

    /// RFC 6750 b64token: letters, digits, `-._~+/`, then optional trailing `=`. Written unquoted, such a value reads
    /// back byte for byte in every dotenv reader (python-dotenv, `docker --env-file`, systemd `EnvironmentFile=`),
    /// none of which agree on quotes or on `$` expansion.
    static func isB64Token(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        let body = bytes.prefix { $0 != UInt8(ascii: "=") }
        let padding = bytes.dropFirst(body.count)
        return !body.isEmpty && padding.allSatisfy { $0 == UInt8(ascii: "=") }
            && body.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                    || "-._~+/".utf8.contains(b)
            }
    }

    /// POSIX single quotes: nothing inside is special; a quote itself is written '\''.
    static func shellQuoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// fish single quotes: only \\ and \' are escapes inside them.
    static func fishQuoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    static func render(_ variables: [(name: String, value: String)], format: Style) throws -> String {
        for (name, value) in variables {
            try checkVariableName(name)
            // A NUL cannot live in an environment variable; a newline would break line-based consumers.
            if value.contains("\0") || value.contains(where: \.isNewline) {
                throw CLIError.integrity("the value of \(name) contains a NUL or a line break; refusing to export it")
            }
        }
        switch format {
        case .sh: return variables.map { "export \($0.name)=\(shellQuoted($0.value))\n" }.joined()
        case .fish: return variables.map { "set -gx \($0.name) \(fishQuoted($0.value));\n" }.joined()
        case .dotenv:
            for (name, value) in variables where !isB64Token(value) {
                throw CLIError.integrity(
                    "the value of \(name) has characters outside the token alphabet (letters, digits, -._~+/ and trailing =); refusing to write it as dotenv",
                    hint: "use --format sh or json, which quote any value")
            }
            return variables.map { "\($0.name)=\($0.value)\n" }.joined()
        case .json:
            var object: [String: String] = [:]
            for (name, value) in variables { object[name] = value }
            return Format.json(object) + "\n"
        }
    }
}
