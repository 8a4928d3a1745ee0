import Foundation

/// Environment variable names that may not carry a token.
public enum VariableNames {
    /// The same check where a stored name is used (env, exec, token): only an edited file or an old version can have
    /// stored a reserved name, so it is an integrity failure there.
    public static func checkAllowedAtUse(_ name: String, integration: String) throws {
        if let reason = reservedReason(name) {
            throw VaultError.integrity(
                "integration '\(integration)' exports its token as \(Format.quoted(name)): \(reason); refusing to use it",
                hint: "if the vault file was not edited, remove the integration and add it again with --env-var NAME")
        }
    }

    /// Names that change how programs run (a token in them is a command injection or a hijacked search path, proxy,
    /// TLS trust store, interpreter or locale for whatever runs next). Compared in any case: zsh ties `path` to
    /// `PATH`, and proxy variables are read in both cases.
    public static let reservedNames: Set<String> = [
        "PATH", "HOME", "SHELL", "USER", "LOGNAME", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "CDPATH",
        "GLOBIGNORE", "PROMPT_COMMAND", "PS1", "PS2", "PS3", "PS4", "TMPDIR", "TZ", "LANG", "NO_PROXY",
        "NODE_OPTIONS", "JAVA_TOOL_OPTIONS", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    ]
    public static let reservedPrefixes = [
        "LC_", "LD_", "DYLD_", "PYTHON", "PERL5", "RUBY", "GIT_", "SSL_CERT_", "XDG_", "TOKENVAULT_",
    ]
    public static let reservedSuffixes = ["_PROXY"]

    /// Why `name` may not carry a token, or nil when it may.
    public static func reservedReason(_ name: String) -> String? {
        let upper = name.uppercased()
        if reservedNames.contains(upper) || reservedPrefixes.contains(where: upper.hasPrefix)
            || reservedSuffixes.contains(where: upper.hasSuffix)
        {
            return "it changes how shells and programs run"
        }
        return nil
    }
}
