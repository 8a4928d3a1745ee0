import Foundation
import Testing

@testable import ProviderSandbox

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The two users of `testConfiguration()`, for every shape.
let shapeUsers: [SandboxConfiguration.User] = [
    .init(id: "person-1", email: "pat@example.com", displayName: "Pat One", orgId: "org-1"),
    .init(id: "person-2", email: "sam@example.com", displayName: "Sam Two", orgId: "org-2"),
]

/// A sandbox of `shape` with the usual client (id, secret, `redirectURI`) registered for `scopes`.
func withShape(
    _ shape: ProviderShape, scopes: [String], _ configure: (inout SandboxConfiguration) -> Void = { _ in },
    _ body: (Harness) async throws -> Void
) async throws {
    var configuration = SandboxConfiguration(
        shape: shape,
        clients: [.init(clientId: clientId, clientSecret: clientSecret, redirectURIs: [redirectURI], scopes: scopes)],
        users: shapeUsers)
    configure(&configuration)
    try await withSandbox(configuration: configuration, body)
}

extension Harness {
    /// One request to `path` on the sandbox's origin (non-Webex shapes serve real providers' paths there).
    func call(
        _ method: String, _ path: String, query: [String: String] = [:], form: [String: String]? = nil,
        json: [String: String]? = nil, basic: (String, String)? = nil, bearer: String? = nil,
        headers: [String: String] = [:]
    ) async throws -> Reply {
        var components = try #require(URLComponents(string: base.absoluteString + path))
        if !query.isEmpty {
            components.percentEncodedQueryItems = query.sorted { $0.key < $1.key }
                .map { URLQueryItem(name: $0.key, value: formEncode($0.value)) }
        }
        var request = URLRequest(url: try #require(components.url))
        request.httpMethod = method
        if let form {
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(
                form.sorted { $0.key < $1.key }
                    .map { "\(formEncode($0.key))=\(formEncode($0.value))" }.joined(separator: "&").utf8)
        }
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        }
        if let (id, secret) = basic {
            request.setValue(
                "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        }
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return try await send(request)
    }

    /// GET an authorization endpoint; returns the redirect's query, failing the test unless it was a 302 to
    /// `redirect`.
    func authorizeAt(
        _ path: String, _ query: [String: String], redirect: String = redirectURI
    ) async throws -> [String: String] {
        let reply = try await call("GET", path, query: query)
        #expect(reply.status == 302, "authorize answered \(reply.status): \(reply.text)")
        let location = try #require(reply.header("Location"))
        #expect(location.hasPrefix(redirect + "?"), "redirected to \(location)")
        return queryFields(URLComponents(string: location)?.percentEncodedQuery ?? "")
    }

    /// One POST over a plain socket, for the answers URLSession on Linux cannot show: a 401 with a Basic challenge
    /// (see `NoRedirects`). The blocking exchange runs on a Dispatch thread, off Swift's cooperative pool: the
    /// in-process sandbox answers on that pool, which has only two threads on a two-core machine; blocking one of
    /// them while another test blocks the other left every in-process sandbox unanswered until the 10 s read
    /// timeouts (this test and, in the same run, the end-to-end Authorize tests failed).
    func raw(_ path: String, form: [String: String], basic: (String, String)? = nil) async throws -> Reply {
        let body = form.sorted { $0.key < $1.key }.map { "\(formEncode($0.key))=\(formEncode($0.value))" }
            .joined(separator: "&")
        var head =
            "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
        if let (id, secret) = basic {
            head += "Authorization: Basic " + Data("\(id):\(secret)".utf8).base64EncodedString() + "\r\n"
        }
        let port = UInt16(try #require(base.port))
        let request = Array((head + "\r\n" + body).utf8)
        let answer = try await withCheckedThrowingContinuation { (done: CheckedContinuation<[UInt8], any Error>) in
            DispatchQueue.global().async { done.resume(with: Result { try exchangeOverSocket(port: port, request) }) }
        }
        let text = String(decoding: answer, as: UTF8.self)
        let headEnd = try #require(text.range(of: "\r\n\r\n"))
        let lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let status = try #require(Int(lines[0].split(separator: " ")[1]))
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: Data(text[headEnd.upperBound...].utf8))
    }

    /// The origin the sandbox serves, `http://127.0.0.1:PORT`.
    var origin: String { base.absoluteString }
}

extension Harness.Reply {
    /// The body read as `application/x-www-form-urlencoded` (GitHub's default answers), decoded independently of the
    /// sandbox's own parser.
    var formFields: [String: String] { queryFields(text) }
}

func queryFields(_ text: String) -> [String: String] {
    let items = URLComponents(string: "http://x/?" + text)?.queryItems ?? []
    return Dictionary(items.map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
}

/// How to drive each non-Webex shape through the same steps, for the tests that hold for every shape.
struct ShapeDriver: Sendable, CustomStringConvertible {
    let shape: ProviderShape
    let scopes: [String]
    let authorizePath: String
    let tokenPath: String
    /// The token endpoint as counted in `requestsByEndpoint`.
    let tokenRoute: String
    let identityMethod: String
    let identityPath: String

    var description: String { shape.rawValue }

    static let google = ShapeDriver(
        shape: .google, scopes: ["openid", "email", "profile"], authorizePath: "/o/oauth2/v2/auth",
        tokenPath: "/token", tokenRoute: "POST /token", identityMethod: "GET", identityPath: "/v1/userinfo")
    static let microsoft = ShapeDriver(
        shape: .microsoft,
        scopes: ["openid", "profile", "email", "offline_access", "https://graph.microsoft.com/User.Read"],
        authorizePath: "/common/oauth2/v2.0/authorize", tokenPath: "/common/oauth2/v2.0/token",
        tokenRoute: "POST /{tenant}/oauth2/v2.0/token", identityMethod: "GET", identityPath: "/oidc/userinfo")
    static let github = ShapeDriver(
        shape: .github, scopes: [], authorizePath: "/login/oauth/authorize", tokenPath: "/login/oauth/access_token",
        tokenRoute: "POST /login/oauth/access_token", identityMethod: "GET", identityPath: "/user")
    static let slack = ShapeDriver(
        shape: .slack, scopes: ["users:read", "chat:write"], authorizePath: "/oauth/v2/authorize",
        tokenPath: "/api/oauth.v2.access", tokenRoute: "POST /api/oauth.v2.access", identityMethod: "POST",
        identityPath: "/api/auth.test")
    static let oidc = ShapeDriver(
        shape: .oidc, scopes: ["openid", "email", "profile"], authorizePath: "/authorize", tokenPath: "/token",
        tokenRoute: "POST /token", identityMethod: "GET", identityPath: "/userinfo")
    static let all = [google, microsoft, github, slack, oidc]

    func run(_ configure: (inout SandboxConfiguration) -> Void = { _ in }, _ body: (Harness) async throws -> Void)
        async throws
    {
        try await withShape(shape, scopes: scopes, configure, body)
    }

    func authorizeQuery() -> [String: String] {
        var query = ["client_id": clientId, "redirect_uri": redirectURI, "state": "st-1"]
        switch shape {
        case .slack: query["user_scope"] = scopes.joined(separator: ",")
        case .github: break
        default:
            query["response_type"] = "code"
            query["scope"] = scopes.joined(separator: " ")
        }
        if shape == .google { query["access_type"] = "offline" }
        return query
    }

    /// POST to the token endpoint the way the shape's clients do (OIDC: Basic only; GitHub: asking for JSON).
    func token(_ h: Harness, _ form: [String: String]) async throws -> Harness.Reply {
        var form = form
        var basic: (String, String)?
        if shape == .oidc {
            basic = (clientId, clientSecret)
        } else {
            form["client_id"] = clientId
            form["client_secret"] = clientSecret
        }
        return try await h.call(
            "POST", tokenPath, form: form, basic: basic,
            headers: shape == .github ? ["Accept": "application/json"] : [:])
    }

    /// Authorize and redeem the code: the first token pair.
    func pair(_ h: Harness) async throws -> (access: String, refresh: String) {
        let code = try #require(try await h.authorizeAt(authorizePath, authorizeQuery())["code"])
        var form = ["code": code, "redirect_uri": redirectURI]
        if shape != .github && shape != .slack { form["grant_type"] = "authorization_code" }
        let reply = try await token(h, form)
        let fields = shape == .slack ? reply.json["authed_user"] as? [String: Any] ?? [:] : reply.json
        return (
            try #require(fields["access_token"] as? String, "\(reply.text)"),
            try #require(fields["refresh_token"] as? String, "\(reply.text)")
        )
    }

    func refresh(_ h: Harness, _ refreshToken: String) async throws -> Harness.Reply {
        try await token(h, ["grant_type": "refresh_token", "refresh_token": refreshToken])
    }

    /// Whether a refresh answer carried a new access token (whatever the shape's error convention).
    func succeeded(_ reply: Harness.Reply) -> Bool {
        reply.status == 200 && reply.json["access_token"] is String
    }

    func identity(_ h: Harness, _ access: String) async throws -> Harness.Reply {
        try await h.call(identityMethod, identityPath, bearer: access)
    }

    /// Whether the identity endpoint accepted the token (Slack answers 200 with `ok`).
    func accepted(_ reply: Harness.Reply) -> Bool {
        reply.status == 200 && (shape != .slack || reply.json["ok"] as? Bool == true)
    }
}

/// Sends `request` to 127.0.0.1:`port` and reads until the server closes the connection (at most 10 s).
func exchangeOverSocket(port: UInt16, _ request: [UInt8]) throws -> [UInt8] {
    struct SocketFailure: Error { let step: String }
    #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw SocketFailure(step: "socket") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw SocketFailure(step: "connect") }
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw SocketFailure(step: "send") }
        sent += n
    }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { throw SocketFailure(step: "recv") }
        if n == 0 { return answer }
        answer += buffer[..<n]
    }
}
