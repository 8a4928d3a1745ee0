// TEMPORARY until the VaultOAuth sanitiser lands (hardening-oauth branch): removed at the merge.
enum ProviderText {
    static func displayable(_ s: String, limit: Int = 200) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && !(0x80...0x9F).contains($0.value) }).prefix(limit))
    }
}
