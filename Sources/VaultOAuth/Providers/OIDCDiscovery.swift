import Foundation

/// OpenID Connect Discovery 1.0: reads `{issuer}/.well-known/openid-configuration` and turns it into a generic
/// provider's options.
///
/// Rules (OIDC Discovery §4): an issuer with a path keeps it (a trailing `/` is dropped before the well-known
/// suffix is appended); the document's `issuer` must be identical to the issuer asked for, else it is refused
/// (a document served for another issuer would send the client secret elsewhere). Every endpoint must be `https`,
/// or plain `http` on this machine when the issuer itself is.
public enum OIDCDiscovery {
    /// The document's URL for an issuer.
    public static func documentURL(issuer: URL) -> URL {
        URL(string: Provider.normalized(issuer) + "/.well-known/openid-configuration")!
    }

    /// Fetches and checks the discovery document; returns the options a generic integration stores.
    public static func discover(issuer: URL, transport: any HTTPTransport) async throws -> ProviderOptions {
        var request = HTTPRequest(method: "GET", url: documentURL(issuer: issuer))
        request.headers["Accept"] = "application/json"
        let object = try OAuthClient.checkedJSON(try await transport.send(request))
        return try options(from: object, issuer: issuer)
    }

    static func options(from o: [String: JSONValue], issuer: URL) throws -> ProviderOptions {
        let asked = Provider.normalized(issuer)
        guard let stated = o["issuer"]?.stringValue else {
            throw OAuthError.invalidResponse("the discovery document has no \"issuer\"")
        }
        // OpenID Connect Discovery requires the document's issuer to be identical to the URL it was fetched for,
        // character for character, a trailing `/` included: "https://idp/x/" and "https://idp/x" are two issuers,
        // and tokens name the one the provider spells.
        guard stated == issuer.absoluteString else {
            let onlySlash = Provider.normalized(URL(string: stated) ?? issuer) == asked
            throw OAuthError.invalidResponse(
                "the discovery document names the issuer \(ProviderText.displayable(stated, limit: 120)), not \(issuer.absoluteString); refusing it (OpenID Connect Discovery §4.3)"
                    + (onlySlash
                        ? "; if that is your provider's issuer, give it exactly so: --issuer \(ProviderText.displayable(stated, limit: 120))"
                        : ""))
        }
        let loopbackIssuer = isLoopbackHTTP(issuer)
        func endpoint(_ key: String, required: Bool) throws -> String? {
            guard let text = o[key]?.stringValue, !text.isEmpty else {
                if required { throw OAuthError.invalidResponse("the discovery document has no \"\(key)\"") }
                return nil
            }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), url.host?.isEmpty == false,
                scheme == "https" || (scheme == "http" && loopbackIssuer && isLoopbackHTTP(url)),
                ProviderText.displayable(text, limit: 2048) == text
            else {
                throw OAuthError.invalidResponse("the discovery document's \"\(key)\" is not an https URL")
            }
            return text
        }
        var options = ProviderOptions(
            issuer: asked,
            authorizeURL: try endpoint("authorization_endpoint", required: true),
            tokenURL: try endpoint("token_endpoint", required: true),
            deviceURL: try endpoint("device_authorization_endpoint", required: false),
            revokeURL: try endpoint("revocation_endpoint", required: false),
            userinfoURL: try endpoint("userinfo_endpoint", required: false))
        // Absent means client_secret_basic (OIDC Discovery §3).
        let methods = strings(o["token_endpoint_auth_methods_supported"]) ?? ["client_secret_basic"]
        options.clientAuth =
            methods.contains("client_secret_basic") ? .basic : methods.contains("client_secret_post") ? .body : .basic
        if let challenges = strings(o["code_challenge_methods_supported"]), !challenges.contains("S256") {
            options.usesPKCE = false
        }
        return options
    }

    static func strings(_ value: JSONValue?) -> [String]? {
        guard case .array(let items)? = value else { return nil }
        return items.compactMap(\.stringValue)
    }

    static func isLoopbackHTTP(_ url: URL) -> Bool {
        url.scheme?.lowercased() == "http"
            && ["127.0.0.1", "localhost", "::1", "[::1]"].contains(url.host?.lowercased() ?? "")
    }
}
