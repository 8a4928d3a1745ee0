import Foundation

/// Renders a variable assignment for a shell or tool. Values are single-quoted, so `eval "$(tokenvault env a)"`
/// sets exactly the stored value, whatever it holds. The unquoted `eval $(…)` also works for every real token;
/// the shell splits and globs the output before eval sees it, so a value with runs of spaces or a lone `*`
/// survives only the quoted form.
enum EnvExport {
    enum Style: String, CaseIterable {
        case sh, fish, dotenv, json
    }

    static func checkVariableName(_ name: String) throws {
        let valid = !name.isEmpty && name.count <= 128
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
            && !(name.first!.isNumber)
        guard valid else {
            throw CLIError.usage("invalid environment variable name \(Format.quoted(name))",
                                 hint: "use letters, digits and '_', not starting with a digit")
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
        case .dotenv: return variables.map { "\($0.name)=\(shellQuoted($0.value))\n" }.joined()
        case .json:
            var object: [String: String] = [:]
            for (name, value) in variables { object[name] = value }
            return Format.json(object) + "\n"
        }
    }
}
