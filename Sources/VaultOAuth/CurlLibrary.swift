import CCurl
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// libcurl, opened with `dlopen` at the first request instead of linked.
///
/// Why: linked, libcurl and its ~38 dependent objects (OpenSSL, nghttp2, GSSAPI, LDAP, ssh2…) were loaded and
/// relocated at every start, which was most of `tokenvault --version` and of `env` through the agent, commands
/// that never touch the network. Only the header is used at build time (the `CCurl` module); the functions are
/// looked up here, with types taken from their declarations in `curl.h`.
// @unchecked: C function pointers and symbol addresses from dlsym, set once and never changed.
struct CurlLibrary: @unchecked Sendable {
    let easyInit: tv_curl_easy_init
    let easyReset: tv_curl_easy_reset
    let easyCleanup: tv_curl_easy_cleanup
    let easyStrerror: tv_curl_easy_strerror
    /// `curl_easy_setopt` and `curl_easy_getinfo`, called through the fixed-type wrappers of `shim.h`.
    let setopt: UnsafeMutableRawPointer
    let getinfo: UnsafeMutableRawPointer
    let slistAppend: tv_curl_slist_append
    let slistFreeAll: tv_curl_slist_free_all
    let multiInit: tv_curl_multi_init
    let multiAddHandle: tv_curl_multi_add_handle
    let multiRemoveHandle: tv_curl_multi_remove_handle
    let multiPerform: tv_curl_multi_perform
    let multiPoll: tv_curl_multi_poll
    let multiWakeup: tv_curl_multi_wakeup
    let multiInfoRead: tv_curl_multi_info_read

    /// The sonames tried in order: Debian's libcurl4 (OpenSSL), then libcurl3-gnutls. Same API and error codes.
    static let names = ["libcurl.so.4", "libcurl-gnutls.so.4"]

    /// The oldest libcurl with everything used here (`CURLOPT_PROTOCOLS_STR`); Debian 12 has 7.88.
    static let minimumVersion: UInt32 = 0x07_55_00

    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    static func load() throws(LoadError) -> CurlLibrary {
        guard let handle = names.lazy.compactMap({ dlopen($0, RTLD_NOW | RTLD_LOCAL) }).first else {
            throw LoadError(
                description:
                    "libcurl is not installed (\(names[0]) could not be loaded; on Debian: apt-get install libcurl4)")
        }
        func symbol<F>(_ name: String, as type: F.Type = F.self) throws(LoadError) -> F {
            guard let p = dlsym(handle, name) else { throw LoadError(description: "libcurl has no \(name)") }
            return unsafeBitCast(p, to: F.self)
        }
        let globalInit: tv_curl_global_init = try symbol("curl_global_init")
        let versionInfo: tv_curl_version_info = try symbol("curl_version_info")
        guard let info = versionInfo(CURLVERSION_FIRST), info.pointee.version_num >= minimumVersion else {
            throw LoadError(description: "libcurl is older than 7.85 (upgrade libcurl4)")
        }
        // Once per process, before any other call (CurlMulti.shared is initialised exactly once).
        guard globalInit(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK else {
            throw LoadError(description: "libcurl failed to initialise")
        }
        guard let setopt = dlsym(handle, "curl_easy_setopt"), let getinfo = dlsym(handle, "curl_easy_getinfo") else {
            throw LoadError(description: "libcurl has no curl_easy_setopt")
        }
        return CurlLibrary(
            easyInit: try symbol("curl_easy_init"), easyReset: try symbol("curl_easy_reset"),
            easyCleanup: try symbol("curl_easy_cleanup"), easyStrerror: try symbol("curl_easy_strerror"),
            setopt: setopt, getinfo: getinfo,
            slistAppend: try symbol("curl_slist_append"), slistFreeAll: try symbol("curl_slist_free_all"),
            multiInit: try symbol("curl_multi_init"), multiAddHandle: try symbol("curl_multi_add_handle"),
            multiRemoveHandle: try symbol("curl_multi_remove_handle"), multiPerform: try symbol("curl_multi_perform"),
            multiPoll: try symbol("curl_multi_poll"), multiWakeup: try symbol("curl_multi_wakeup"),
            multiInfoRead: try symbol("curl_multi_info_read"))
    }

    @discardableResult
    func set(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, _ value: Int) -> CURLcode {
        tv_setopt_long(setopt, easy, option, value)
    }

    @discardableResult
    func set(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, offset value: Int64) -> CURLcode {
        tv_setopt_offset(setopt, easy, option, curl_off_t(value))
    }

    /// A string option; libcurl copies it.
    @discardableResult
    func set(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, _ value: String) -> CURLcode {
        value.withCString { tv_setopt_pointer(setopt, easy, option, $0) }
    }

    @discardableResult
    func set(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, pointer value: UnsafeRawPointer?) -> CURLcode {
        tv_setopt_pointer(setopt, easy, option, value)
    }

    @discardableResult
    func set(_ easy: UnsafeMutableRawPointer, _ option: CURLoption, callback: curl_write_callback) -> CURLcode {
        tv_setopt_callback(setopt, easy, option, callback)
    }

    func info(_ easy: UnsafeMutableRawPointer, _ what: CURLINFO) -> Int {
        var value = 0
        _ = tv_getinfo_long(getinfo, easy, what, &value)
        return value
    }

    func message(_ code: CURLcode) -> String {
        easyStrerror(code).map { String(cString: $0) } ?? "libcurl error \(code.rawValue)"
    }
}
