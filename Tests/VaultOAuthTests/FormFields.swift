import Foundation

@testable import VaultOAuth

extension HTTPRequest {
    /// The body decoded as a form, so tests can compare what was sent.
    var formFields: [String: String] {
        guard let body, let text = String(data: body, encoding: .utf8) else { return [:] }
        return Dictionary(FormEncoding.decode(text), uniquingKeysWith: { first, _ in first })
    }
}
