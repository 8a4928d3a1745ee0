/// Text that came from a provider (or anything else outside tokenvault) made safe to show a person.
///
/// A provider controls Webex `trackingId`s, display names, emails, `error_description`s and REST messages. Printed
/// raw, `ESC [ … m`, `ESC ] 0 ; title BEL` or a carriage return rewrite what the terminal shows (a fake prompt, a
/// hidden line, a changed window title), and bidi overrides make text read differently from what it is.
public enum ProviderText {
    /// The length ``displayable(_:limit:)`` clips to by default.
    public static let defaultLimit = 200

    /// `s` without control characters and clipped to `limit` characters (with `…`).
    ///
    /// Tab, CR and LF become a space (so words stay apart); every other C0 control, DEL, the C1 controls
    /// U+0080–U+009F (U+009B is a one-byte CSI for some terminals), the bidi embeddings, overrides and isolates
    /// U+202A–U+202E and U+2066–U+2069, and the bidi marks U+200E, U+200F and U+061C are removed.
    /// Use it both where provider text enters the program and where it is printed.
    public static func displayable(_ s: String, limit: Int = defaultLimit) -> String {
        var scalars = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            switch u.value {
            case 0x09, 0x0A, 0x0D: scalars.append(" ")
            case 0x00...0x1F, 0x7F...0x9F: continue
            case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: continue
            default: scalars.append(u)
            }
        }
        let clean = String(scalars)
        let limit = max(limit, 1)
        guard clean.count > limit else { return clean }
        return String(clean.prefix(limit)) + "…"
    }

    /// ``displayable(_:limit:)`` for optional text.
    public static func displayable(_ s: String?, limit: Int = defaultLimit) -> String? {
        s.map { displayable($0, limit: limit) }
    }
}
