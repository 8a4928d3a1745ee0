import Foundation

/// How the browser's redirect back to tokenvault is received, decided from the integration's redirect URI.
///
/// Webex matches redirect URIs exactly, so tokenvault listens on exactly the registered host and port
/// (RFC 8252 §7.3, loopback only). An `https://localhost` URI cannot be served without a certificate, and a
/// public URL is not ours to serve: both fall back to pasting the URL the browser landed on.
public enum RedirectMode: Sendable, Equatable {
    /// Listen on `host:port` (host as written, without brackets: `localhost`, `127.0.0.1` or `::1`).
    case loopback(host: String, port: UInt16, path: String)
    /// Ask the user to paste the URL the browser landed on, or the code.
    case paste

    /// - Throws: ``OAuthError/invalidRedirectURI(_:)`` when the URI has no scheme or host.
    public init(redirectURI: String) throws {
        guard let c = URLComponents(string: redirectURI), let scheme = c.scheme?.lowercased(),
            var host = c.host, !host.isEmpty
        else {
            throw OAuthError.invalidRedirectURI(
                "\"\(redirectURI)\" is not an absolute URL such as http://localhost:8080/callback")
        }
        host = host.lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard scheme == "http", LoopbackListener.isLoopbackName(host) else {
            self = .paste
            return
        }
        guard let port = c.port.map({ UInt16(exactly: $0) }) ?? 80 else {
            throw OAuthError.invalidRedirectURI("port \(c.port ?? 0) in \"\(redirectURI)\" is out of range")
        }
        let path = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
        self = .loopback(host: host, port: port, path: path)
    }
}

/// Reads what the user pasted after authorizing in a browser: the full URL the browser landed on (its
/// `state` is checked and an `error` parameter reported) or the bare code (nothing to check: the user copied
/// it from their own browser). Returns the authorization code.
///
/// Each problem is named exactly, so that the user can fix the paste and try again: nothing pasted, neither a
/// URL nor a code, a URL without `code=`/`state=`, a URL with another `state` than this authorization's (all
/// ``OAuthError/invalidPaste(_:)``), or the provider's `error=` (``OAuthError/callbackError(code:description:)``).
public func parsePastedCallback(_ text: String, expectedState: String) throws -> String {
    var t = text.trimmingCharacters(in: .whitespacesAndNewlines)
    // Terminals and chat tools wrap URLs in quotes or angle brackets.
    while let first = t.first, let last = t.last, t.count >= 2,
        (first == "\"" && last == "\"") || (first == "'" && last == "'") || (first == "<" && last == ">")
    {
        t = String(t.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
    }
    guard !t.isEmpty else { throw OAuthError.invalidPaste("nothing was pasted") }

    let query: String
    if let q = t.firstIndex(of: "?") {
        let rest = t[t.index(after: q)...]
        query = String(rest.prefix { $0 != "#" })
    } else if t.contains("=") && !t.contains("://") {
        query = t  // "code=…&state=…" copied from the address bar's tail
    } else if t.contains("://") || t.contains("/") {
        throw OAuthError.invalidPaste(
            "that URL has no code= in it (it is not the address the browser landed on after you approved)")
    } else {
        guard t.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && !"&=?#".unicodeScalars.contains($0) })
        else {
            throw OAuthError.invalidPaste("that is neither a URL nor an authorization code")
        }
        return t
    }

    let callback = CallbackParameters(query: query)
    if let error = callback.error, callback.state == nil || callback.state == expectedState {
        throw OAuthError.callbackError(code: error, description: callback.errorDescription)
    }
    guard callback.code != nil || callback.state != nil else {
        throw OAuthError.invalidPaste(
            "that URL has no code= in it (it is not the address the browser landed on after you approved)")
    }
    guard let state = callback.state else {
        throw OAuthError.invalidPaste(
            "that URL has no state= in it, so it cannot be checked against this authorization")
    }
    guard CallbackParameters.constantTimeEqual(state, expectedState) else {
        throw OAuthError.invalidPaste(
            "that URL carries another state than this authorization (it comes from an earlier attempt, another tab or someone else's link)"
        )
    }
    guard let code = callback.code, !code.isEmpty else { throw OAuthError.invalidPaste("that URL has no code= in it") }
    return code
}

/// The parameters of a redirect back from the authorization endpoint, and the rules for accepting them.
struct CallbackParameters {
    var code: String?
    var state: String?
    var error: String?
    var errorDescription: String?

    init(query: String) {
        for (k, v) in FormEncoding.decode(query) {
            switch k {
            case "code": code = code ?? v
            case "state": state = state ?? v
            case "error": error = error ?? v
            case "error_description": errorDescription = errorDescription ?? v
            default: break
            }
        }
    }

    var isCallback: Bool { code != nil || state != nil || error != nil }

    /// RFC 6749 §10.12: the state must match exactly, else the callback is refused whatever it carries.
    /// An error without any state is still reported: it can only make the attempt fail, never succeed.
    func code(expectedState: String) throws -> String {
        if let error, state == nil || state == expectedState {
            throw OAuthError.callbackError(code: error, description: errorDescription)
        }
        guard let state, Self.constantTimeEqual(state, expectedState) else { throw OAuthError.stateMismatch }
        guard let code, !code.isEmpty else { throw OAuthError.callbackMissingCode }
        return code
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
