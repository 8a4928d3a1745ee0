import Foundation

/// A token endpoint's answer, as providers give it (Webex's lifetimes by default); no refresh token, and no
/// refresh token lifetime, when `refresh` is nil.
public func tokenJSON(access: String, refresh: String?, expiresIn: Int = 1_209_599, refreshExpiresIn: Int = 7_776_000)
    -> String
{
    var object: [String: Any] = ["access_token": access, "expires_in": expiresIn, "token_type": "Bearer"]
    if let refresh {
        object["refresh_token"] = refresh
        object["refresh_token_expires_in"] = refreshExpiresIn
    }
    return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
}
