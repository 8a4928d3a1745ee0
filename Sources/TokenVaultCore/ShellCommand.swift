import VaultOAuth

/// A tokenvault command shown to a person to copy (in a hint, a warning, `check`'s lines): the words written as
/// they are, every interpolated value (a name) made one shell word. Write it `Format.command("tokenvault
/// authorize \(account)")`.
///
/// When no value needs quoting the command reads as every hint writes one, in single quotes: 'tokenvault
/// authorize alice'. When one does, each such value is single-quoted for a POSIX shell and the command is shown
/// without the quotes around it (tokenvault authorize 'a b'), so that copying it with or without them never runs
/// what a value holds.
public struct ShellCommand: ExpressibleByStringInterpolation, CustomStringConvertible, Sendable {
    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var quoted = false

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + 16 * interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) { text += literal }

        public mutating func appendInterpolation(_ value: String) {
            let word = ShellCommand.word(value)
            if word != value { quoted = true }
            text += word
        }
    }

    let text: String
    let quoted: Bool

    public init(stringLiteral value: String) {
        text = value
        quoted = false
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        quoted = stringInterpolation.quoted
    }

    public var description: String { quoted ? text : "'\(text)'" }

    /// `value` as one POSIX shell word: as it is when it holds only characters no shell treats specially, else in
    /// single quotes (a quote inside written '\''). Control characters and bidi overrides, which a terminal acts
    /// on even inside quotes, are taken out first (``ProviderText/displayable(_:limit:)``).
    public static func word(_ value: String) -> String {
        let clean = ProviderText.displayable(value, limit: 1000)
        if !clean.isEmpty, clean.utf8.allSatisfy(isPlain) { return clean }
        return "'" + clean.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "@%+=:,./_-".utf8.contains(byte)
        }
    }
}

extension Format {
    /// A command for a person to copy, its values quoted for the shell (``ShellCommand``).
    public static func command(_ command: ShellCommand) -> String { command.description }
}
