import Foundation
import TokenVaultCore
import VaultAgent
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// The token endpoint wired to a vault: the HTTP server (VaultAgent's ``TokenEndpoint``) answering with the core's
/// ``TokenLender``. Used by `serve`, the agent and `exec --serve`.
enum Lending {
    /// Binds the endpoint at `socketPath` (mode `mode`) and starts serving it on a thread of its own.
    static func start(
        vault: UnlockedVault, context: Context, policy: TokenLender.Policy, socketPath: String, mode: mode_t,
        minValid: TimeInterval, verbose: Bool = false
    ) throws -> TokenEndpoint {
        let lender = TokenLender(
            service: TokenService(vault: vault, services: context.services, verbose: verbose), policy: policy,
            minValid: minValid)
        @Sendable func response(_ answer: TokenLender.Answer) -> TokenEndpoint.Response {
            switch answer {
            case .token(let lent, let notes):
                var headers: [(name: String, value: String)] = []
                if let notes {
                    headers.append((ownerVariableHeader, notes.variable))
                    headers += notes.warnings.map { (ownerWarningHeader, $0) }
                }
                return .init(status: 200, body: TokenLender.json(lent), headers: headers)
            case .refused(let status, let message): return .error(status, message)
            }
        }
        // A token that needs no refresh is answered on the connection's thread; a refresh goes through the async
        // path, where concurrent requests for one account share it.
        let endpoint = TokenEndpoint(
            socketPath: socketPath, mode: mode,
            respondNow: { request in
                lender.answerNow(
                    path: request.path, query: request.query, uid: request.peer.uid,
                    groups: request.peer.groups.map { UInt32($0) }
                ).map(response)
            },
            respond: { request in
                response(
                    await lender.answer(
                        path: request.path, query: request.query, uid: request.peer.uid,
                        groups: request.peer.groups.map { UInt32($0) }))
            })
        try endpoint.bind()
        let thread = Thread { endpoint.run() }
        thread.stackSize = 1 << 20
        thread.start()
        return endpoint
    }

    /// Header fields only the owner gets: the integration's variable, and each warning of the lookup.
    static let ownerVariableHeader = "X-Tokenvault-Variable"
    static let ownerWarningHeader = "X-Tokenvault-Warning"

    /// The agent's token endpoint: beside its key socket, in the same private directory; its owner's alone.
    static func agentSocketPath(keySocket: String) -> String {
        let url = URL(fileURLWithPath: keySocket)
        let name = url.lastPathComponent.replacingOccurrences(of: "agent-", with: "token-")
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// The URL path of an account's token.
    static func tokenPath(_ account: String) -> String {
        "/v1/accounts/\(account.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? account)/token"
    }

    /// `env` and `token` through the agent: one request to its token endpoint, which opens (and when due refreshes)
    /// the token itself. The token and the integration's variable; nil when no agent answers for this vault, or it
    /// answers anything but a token (the usual path then runs and reports the error with its exit code).
    static func throughAgent(
        account: String, global: GlobalOptions, minValid: TimeInterval, trigger: String, context: Context
    ) -> (token: String, variable: String)? {
        // --verbose traces the requests of a refresh, which only this process can show.
        guard global.passphraseFd == nil, !global.verbose,
            let answer = askAgent(
                account: account, location: VaultLocation.resolve(option: global.vault, context: context),
                minValid: minValid, trigger: trigger, context: context)
        else { return nil }
        for warning in answer.warnings { context.console.warn(warning) }
        return (answer.token, answer.variable)
    }

    /// The request itself: the token, the integration's variable and the lookup's warnings (not yet printed), or
    /// nil when no agent answered with a token.
    static func askAgent(
        account: String, location: VaultLocation, minValid: TimeInterval, trigger: String, context: Context
    ) -> (token: String, variable: String, warnings: [String])? {
        guard let keySocket = VaultUnlocking.socketPath(location: location.text, context: context) else { return nil }
        let socket = agentSocketPath(keySocket: keySocket)
        guard access(socket, F_OK) == 0,
            (try? AgentSocket.checkDirectory(
                URL(fileURLWithPath: socket).deletingLastPathComponent().path, create: false)) != nil,
            let answer = try? TokenEndpointClient.get(
                socketPath: socket, path: tokenPath(account) + "?min_valid=\(Int(minValid))&trigger=\(trigger)",
                serverUID: geteuid()),
            answer.status == 200,
            let object = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any],
            let token = object["access_token"] as? String,
            let variable = answer.headers.first(where: { $0.name == ownerVariableHeader.lowercased() })?.value
        else { return nil }
        let warnings = answer.headers.filter { $0.name == ownerWarningHeader.lowercased() }.map(\.value)
        return (token, variable, warnings)
    }

    /// `tokenvault token NAME` inside `exec --serve`: the token from the endpoint in TOKENVAULT_SOCKET, no passphrase.
    static func tokenFromEndpoint(socket: String, account: String) throws -> String {
        let answer: TokenEndpointClient.Answer
        do { answer = try TokenEndpointClient.get(socketPath: socket, path: tokenPath(account)) } catch {
            throw CLIError.usage(
                "cannot ask the token endpoint in TOKENVAULT_SOCKET: \(error.localizedDescription)",
                hint: "unset TOKENVAULT_SOCKET to open the vault itself")
        }
        let object =
            (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
        guard answer.status == 200, let token = object["access_token"] as? String else {
            let said = object["error"] as? String ?? "status \(answer.status)"
            switch answer.status {
            case 403, 404:
                throw CLIError.usage(
                    "the token endpoint in TOKENVAULT_SOCKET refused '\(account)': \(said)",
                    hint: "ask for an account the command was given")
            case 502: throw CLIError.provider("the token endpoint could not give '\(account)': \(said)")
            default: throw CLIError.usage("the token endpoint refused '\(account)': \(said)")
            }
        }
        return token
    }
}
