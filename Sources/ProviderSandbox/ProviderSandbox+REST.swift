import Foundation

extension ProviderSandbox {
    private static let missingToken =
        "The request requires a valid access token set in the Authorization request header."

    /// The authorization behind the request's Bearer token, or the 401 Webex answers without one.
    private func caller(_ request: IncomingRequest, now: Date) -> Result<Authorization, RESTRefusal> {
        guard let token = bearerToken(request.headers["authorization"]),
            let authorization = authorization(forAccessToken: token, now: now)
        else {
            return .failure(RESTRefusal(response: .restError(401, Self.missingToken)))
        }
        return .success(authorization)
    }

    private func requireScope(_ authorization: Authorization, anyOf scopes: [String]) -> OutgoingResponse? {
        guard authorization.scopes.contains(where: scopes.contains) else {
            return .restError(
                403,
                "The server understood the request, but refused to fulfill it because the "
                    + "access token is missing required scopes.",
                description: "Requires one of: \(scopes.joined(separator: ", "))")
        }
        return nil
    }

    // MARK: GET /v1/people/me

    func peopleMe(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let authorization: Authorization
        switch caller(request, now: now) {
        case .success(let found): authorization = found
        case .failure(let refusal): return refusal.response
        }
        if let refusal = requireScope(authorization, anyOf: ["spark:people_read", "spark:all"]) { return refusal }
        guard let user = user(authorization.userId) else {
            return .restError(404, "The requested resource could not be found.")
        }
        return .json(
            200,
            [
                "id": user.id,
                "emails": [user.email],
                "displayName": user.displayName,
                "orgId": user.orgId,
                "type": "person",
                "created": iso8601(authorization.created),
            ])
    }

    // MARK: /v1/authorizations

    func listAuthorizations(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let caller: Authorization
        switch self.caller(request, now: now) {
        case .success(let found): caller = found
        case .failure(let refusal): return refusal.response
        }
        if let refusal = requireScope(caller, anyOf: ["identity:tokens_read", "identity:tokens_write"]) {
            return refusal
        }
        let person: SandboxConfiguration.User?
        if let email = request.query["personEmail"] {
            person = configuration.users.first { $0.email.caseInsensitiveCompare(email) == .orderedSame }
        } else if let personId = request.query["personId"] {
            person = user(personId)
        } else {
            return .restError(
                400, "The request could not be understood by the server due to malformed syntax.",
                description: "personEmail or personId is required")
        }
        guard let person else { return .json(200, ["items": [[String: any Sendable]]()]) }
        let items: [[String: any Sendable]] = authorizations.values
            .filter { $0.userId == person.id && !$0.revoked }
            .sorted { ($0.created, $0.id) < ($1.created, $1.id) }
            .map { authorization in
                [
                    "id": authorization.id,
                    "applicationId": authorization.clientId,
                    "applicationName": authorization.clientId,
                    "orgId": person.orgId,
                    "personId": person.id,
                    "type": "refresh",
                    "created": iso8601(authorization.created),
                ]
            }
        return .json(200, ["items": items])
    }

    /// `DELETE /v1/authorizations?clientId=…[&orgId=…]`: every authorization the caller's user gave that client.
    func deleteAuthorizations(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let caller: Authorization
        switch self.caller(request, now: now) {
        case .success(let found): caller = found
        case .failure(let refusal): return refusal.response
        }
        if let refusal = requireScope(caller, anyOf: ["identity:tokens_write"]) { return refusal }
        guard let clientId = request.query["clientId"], client(clientId) != nil else {
            return .restError(
                404, "The requested resource could not be found.",
                description: "clientId is missing or unknown")
        }
        let orgId = request.query["orgId"]
        if let orgId, user(caller.userId)?.orgId != orgId {
            return .restError(404, "The requested resource could not be found.", description: "orgId does not match")
        }
        revokeAuthorizations { $0.userId == caller.userId && $0.clientId == clientId }
        return OutgoingResponse(status: 204, headers: [], body: Data())
    }

    func deleteAuthorization(id: String, _ request: IncomingRequest, now: Date) -> OutgoingResponse {
        let caller: Authorization
        switch self.caller(request, now: now) {
        case .success(let found): caller = found
        case .failure(let refusal): return refusal.response
        }
        if let refusal = requireScope(caller, anyOf: ["identity:tokens_write"]) { return refusal }
        guard let authorization = authorizations[id], !authorization.revoked else {
            return .restError(404, "The requested resource could not be found.")
        }
        revokeAuthorizations { $0.id == authorization.id }
        return OutgoingResponse(status: 204, headers: [], body: Data())
    }

    /// `GET /v1/authorizations/tokenExpiry`: when the caller's access token expires, in epoch milliseconds.
    func tokenExpiry(_ request: IncomingRequest, now: Date) -> OutgoingResponse {
        guard let token = bearerToken(request.headers["authorization"]),
            authorization(forAccessToken: token, now: now) != nil, let record = accessTokens[token]
        else {
            return .restError(401, Self.missingToken)
        }
        return .json(200, ["exp": Int64(record.expiresAt.timeIntervalSince1970 * 1000)])
    }

    func revokeAuthorizations(where predicate: (Authorization) -> Bool) {
        for (id, authorization) in authorizations where predicate(authorization) {
            authorizations[id]?.revoked = true
        }
    }
}

struct RESTRefusal: Error {
    var response: OutgoingResponse
}

func iso8601(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}
