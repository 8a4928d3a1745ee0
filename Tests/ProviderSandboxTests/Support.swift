import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

let clientId = "C-sandbox-client"
let clientSecret = "sandbox-secret"
let redirectURI = "http://127.0.0.1:8765/callback"
let registeredScopes = ["spark:people_read", "spark:messages_read", "identity:tokens_write", "identity:tokens_read"]

func testConfiguration() -> SandboxConfiguration {
    SandboxConfiguration(
        clients: [
            .init(clientId: clientId, clientSecret: clientSecret, redirectURIs: [redirectURI], scopes: registeredScopes)
        ],
        users: [
            .init(id: "person-1", email: "pat@example.com", displayName: "Pat One", orgId: "org-1"),
            .init(id: "person-2", email: "sam@example.com", displayName: "Sam Two", orgId: "org-2"),
        ])
}

/// Refuses every redirect so authorize tests see the 302 itself, and every authentication challenge.
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    /// A 401 with a `WWW-Authenticate: Basic` challenge fails the request at once. Without this, URLSession on Linux
    /// waits forever for credentials (swiftlang/swift-corelibs-foundation#5456, still in Swift 6.3.1), and no
    /// disposition lets the 401 through: tests read such answers with `Harness.raw`.
    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping @Sendable (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        completionHandler(.cancelAuthenticationChallenge, nil)
    }
}

/// A running in-process sandbox and a URLSession that talks to it.
struct Harness {
    let sandbox: ProviderSandbox
    let base: URL
    let session: URLSession

    struct Reply {
        let status: Int
        let headers: [String: String]
        let body: Data

        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        }

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func send(_ request: URLRequest) async throws -> Reply {
        let (data, response) = try await session.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            headers["\(key)"] = "\(value)"
        }
        return Reply(status: http.statusCode, headers: headers, body: data)
    }

    func get(_ path: String, query: [String: String] = [:], bearer: String? = nil) async throws -> Reply {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty {
            components.percentEncodedQueryItems = query.sorted { $0.key < $1.key }
                .map { URLQueryItem(name: $0.key, value: formEncode($0.value)) }
        }
        var request = URLRequest(url: components.url!)
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        return try await send(request)
    }

    func delete(_ path: String, query: [String: String] = [:], bearer: String?) async throws -> Reply {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty {
            components.percentEncodedQueryItems = query.map { URLQueryItem(name: $0.key, value: formEncode($0.value)) }
        }
        var request = URLRequest(url: components.url!)
        request.httpMethod = "DELETE"
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        return try await send(request)
    }

    func post(_ path: String, form: [String: String], basic: (String, String)? = nil) async throws -> Reply {
        var request = URLRequest(url: base.appendingPathComponent(path))
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(
            form.map { "\(formEncode($0.key))=\(formEncode($0.value))" }
                .joined(separator: "&").utf8)
        if let (id, secret) = basic {
            let credentials = Data("\(id):\(secret)".utf8).base64EncodedString()
            request.setValue("Basic \(credentials)", forHTTPHeaderField: "Authorization")
        }
        return try await send(request)
    }

    /// GET /authorize and return the redirect's query, failing the test unless it was a 302.
    func authorize(
        scope: String = "spark:people_read", state: String = "st-123", challenge: String? = nil,
        extra: [String: String] = [:]
    ) async throws -> [String: String] {
        var query = [
            "client_id": clientId, "response_type": "code", "redirect_uri": redirectURI, "scope": scope, "state": state,
        ]
        if let challenge {
            query["code_challenge"] = challenge
            query["code_challenge_method"] = "S256"
        }
        query.merge(extra) { $1 }
        let reply = try await get("authorize", query: query)
        #expect(reply.status == 302)
        let location = try #require(reply.header("Location"))
        #expect(location.hasPrefix(redirectURI + "?"))
        let items = URLComponents(string: location)?.queryItems ?? []
        return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
    }

    func exchange(code: String, verifier: String? = nil, redirect: String = redirectURI) async throws -> Reply {
        var form = [
            "grant_type": "authorization_code", "client_id": clientId, "client_secret": clientSecret, "code": code,
            "redirect_uri": redirect,
        ]
        form["code_verifier"] = verifier
        return try await post("access_token", form: form)
    }

    func refresh(_ refreshToken: String) async throws -> Reply {
        try await post(
            "access_token",
            form: [
                "grant_type": "refresh_token", "client_id": clientId, "client_secret": clientSecret,
                "refresh_token": refreshToken,
            ])
    }
}

func formEncode(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed)!
}

/// Starts a sandbox on 127.0.0.1:0, runs `body`, and stops it whatever happens.
func withSandbox(
    _ configure: (inout SandboxConfiguration) -> Void = { _ in },
    _ body: (Harness) async throws -> Void
) async throws {
    var configuration = testConfiguration()
    configure(&configuration)
    try await withSandbox(configuration: configuration, body)
}

/// Starts a sandbox with exactly this configuration on 127.0.0.1:0, runs `body`, and stops it whatever happens.
func withSandbox(configuration: SandboxConfiguration, _ body: (Harness) async throws -> Void) async throws {
    let sandbox = ProviderSandbox(configuration: configuration)
    let base = try await sandbox.start()
    let sessionConfiguration = URLSessionConfiguration.ephemeral
    sessionConfiguration.httpMaximumConnectionsPerHost = 128
    // Long enough to ride out the sandbox's pool threads held by blocking tests of other suites (2 cores: 2 pool
    // threads); a request that never gets an answer still fails, it does not hang.
    sessionConfiguration.timeoutIntervalForRequest = 120
    let session = URLSession(configuration: sessionConfiguration, delegate: NoRedirects(), delegateQueue: nil)
    do {
        try await body(Harness(sandbox: sandbox, base: base, session: session))
    } catch {
        session.invalidateAndCancel()
        await sandbox.stop()
        throw error
    }
    session.invalidateAndCancel()
    await sandbox.stop()
}

/// A PKCE verifier and its S256 challenge computed independently of the sandbox's own helper.
let rfc7636Verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
let rfc7636Challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
