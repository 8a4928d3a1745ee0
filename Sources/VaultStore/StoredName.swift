/// The rule for the names of integrations, accounts and key slots: 1 to 64 ASCII letters, digits, `.`, `_`, `-`
/// and `@`. tokenvault creates no other name (`add`, `import`, `authorize`, `keys add`; `init`'s slot is "main"),
/// so a row read back with another one was written behind its back, and is refused before the name can reach a
/// terminal (an escape sequence, a newline) or a command a person copies (`$(…)`, quotes, spaces).
public enum StoredName {
    public static let maxLength = 64
    /// The rule in words, for a hint.
    public static let rule = "1 to 64 letters, digits, '.', '_', '-' or '@'"

    public static func isValid(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy(isAllowed)
    }

    /// The name in double quotes with every character outside the rule written `\u{…}`: safe to print whatever the
    /// name holds, and unambiguous (for a row that has no id, such as a key slot).
    public static func visible(_ name: String) -> String {
        var out = "\""
        for scalar in name.unicodeScalars.prefix(maxLength) {
            if scalar.isASCII, isAllowed(UInt8(scalar.value)) {
                out.unicodeScalars.append(scalar)
            } else {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            }
        }
        return out + (name.unicodeScalars.count > maxLength ? "…\"" : "\"")
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "@"):
            true
        default: false
        }
    }
}

/// A name read from a row, refused unless it obeys ``StoredName``'s rule. `row` names the row by its id (the name
/// itself is never repeated raw).
func checkedName(_ name: String, of row: String) throws -> String {
    guard StoredName.isValid(name) else {
        throw StoreError.invalidRecord("\(row) has a name tokenvault does not create (\(StoredName.rule))")
    }
    return name
}

/// The same for a row whose id was not checked (`list`'s summaries, read by the 100,000): the id is checked only
/// when the name is refused, to name the row in the error.
func checkedName(_ name: String, ofRowKind kind: String, id: @autoclosure () -> String?) throws -> String {
    guard StoredName.isValid(name) else {
        let row = (try? checkedId(id(), column: "id", of: kind)).map { "\(kind) \($0)" } ?? "\(kind) with an invalid id"
        throw StoreError.invalidRecord("\(row) has a name tokenvault does not create (\(StoredName.rule))")
    }
    return name
}

/// A key slot's name, refused the same way; a slot has no id, so it is named by its name made printable.
func checkedSlotName(_ name: String) throws -> String {
    guard StoredName.isValid(name) else {
        throw StoreError.invalidRecord(
            "key slot \(StoredName.visible(name)) has a name tokenvault does not create (\(StoredName.rule))")
    }
    return name
}
