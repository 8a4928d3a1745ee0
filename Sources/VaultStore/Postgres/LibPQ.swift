import CLibPQ
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// libpq's functions, loaded with `dlopen("libpq.so.5")` when a PostgreSQL vault is first used. tokenvault is not
/// linked against libpq (CLibPQ's module map has no `link`): starting it for `--version` or any SQLite command
/// never loads libpq and the libraries it pulls in (`--version` has a budget of 8 ms, see BENCHMARKS.md). The
/// header gives the types and constants; the functions come from here.
// @unchecked: C function pointers from dlsym, set once and never changed.
struct LibPQ: @unchecked Sendable {
    typealias Conn = OpaquePointer
    typealias Result = OpaquePointer

    let connectdbParams:
        @convention(c) (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?, Int32) -> Conn?
    let finish: @convention(c) (Conn?) -> Void
    let status: @convention(c) (Conn?) -> ConnStatusType
    let transactionStatus: @convention(c) (Conn?) -> PGTransactionStatusType
    let errorMessage: @convention(c) (Conn?) -> UnsafeMutablePointer<CChar>?
    let backendPID: @convention(c) (Conn?) -> Int32
    let exec: @convention(c) (Conn?, UnsafePointer<CChar>?) -> Result?
    let execParams:
        @convention(c) (
            Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?,
            UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
            UnsafePointer<Int32>?, Int32
        ) -> Result?
    let prepare:
        @convention(c) (Conn?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?) -> Result?
    let execPrepared:
        @convention(c) (
            Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
            UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32
        ) -> Result?
    let resultStatus: @convention(c) (Result?) -> ExecStatusType
    let resultErrorMessage: @convention(c) (Result?) -> UnsafeMutablePointer<CChar>?
    let resultErrorField: @convention(c) (Result?, Int32) -> UnsafeMutablePointer<CChar>?
    let clear: @convention(c) (Result?) -> Void
    let ntuples: @convention(c) (Result?) -> Int32
    let nfields: @convention(c) (Result?) -> Int32
    let fname: @convention(c) (Result?, Int32) -> UnsafeMutablePointer<CChar>?
    let ftype: @convention(c) (Result?, Int32) -> Oid
    let getisnull: @convention(c) (Result?, Int32, Int32) -> Int32
    let getvalue: @convention(c) (Result?, Int32, Int32) -> UnsafeMutablePointer<CChar>?
    let getlength: @convention(c) (Result?, Int32, Int32) -> Int32
    let cmdTuples: @convention(c) (Result?) -> UnsafeMutablePointer<CChar>?
    let conninfoParse:
        @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
            -> UnsafeMutablePointer<PQconninfoOption>?
    let conninfo: @convention(c) (Conn?) -> UnsafeMutablePointer<PQconninfoOption>?
    let conninfoFree: @convention(c) (UnsafeMutablePointer<PQconninfoOption>?) -> Void
    let freemem: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let setNoticeProcessor: @convention(c) (Conn?, PQnoticeProcessor?, UnsafeMutableRawPointer?) -> PQnoticeProcessor?

    /// Loaded once, at the first use; the error (libpq missing) is kept and thrown at every use.
    private static let loaded: Swift.Result<LibPQ, StoreError> = load()

    static func shared() throws -> LibPQ { try loaded.get() }

    /// `library` is a parameter so that a test can ask for one that is not installed.
    static func load(_ library: String = "libpq.so.5") -> Swift.Result<LibPQ, StoreError> {
        guard let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(
                .postgres(
                    "cannot load libpq, PostgreSQL's client library (\(reason))",
                    hint: "install libpq5 (Debian: 'apt-get install libpq5') to use a PostgreSQL vault"))
        }
        var missing: [String] = []
        func symbol<T>(_ name: String, _: T.Type = T.self) -> T? {
            guard let pointer = dlsym(handle, name) else {
                missing.append(name)
                return nil
            }
            return unsafeBitCast(pointer, to: T.self)
        }
        let library = LibPQ(
            connectdbParams: symbol("PQconnectdbParams"), finish: symbol("PQfinish"), status: symbol("PQstatus"),
            transactionStatus: symbol("PQtransactionStatus"), errorMessage: symbol("PQerrorMessage"),
            backendPID: symbol("PQbackendPID"), exec: symbol("PQexec"), execParams: symbol("PQexecParams"),
            prepare: symbol("PQprepare"), execPrepared: symbol("PQexecPrepared"),
            resultStatus: symbol("PQresultStatus"), resultErrorMessage: symbol("PQresultErrorMessage"),
            resultErrorField: symbol("PQresultErrorField"), clear: symbol("PQclear"), ntuples: symbol("PQntuples"),
            nfields: symbol("PQnfields"), fname: symbol("PQfname"), ftype: symbol("PQftype"),
            getisnull: symbol("PQgetisnull"), getvalue: symbol("PQgetvalue"), getlength: symbol("PQgetlength"),
            cmdTuples: symbol("PQcmdTuples"), conninfoParse: symbol("PQconninfoParse"), conninfo: symbol("PQconninfo"),
            conninfoFree: symbol("PQconninfoFree"), freemem: symbol("PQfreemem"),
            setNoticeProcessor: symbol("PQsetNoticeProcessor"))
        guard let library, missing.isEmpty else {
            return .failure(
                .postgres(
                    "the libpq.so.5 found lacks \(missing.joined(separator: ", "))",
                    hint: "install a current libpq5 (Debian: 'apt-get install libpq5')"))
        }
        return .success(library)
    }

    /// The memberwise initializer with every function optional: nil when a symbol is missing.
    private init?(
        connectdbParams: (
            @convention(c) (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?, Int32) ->
                Conn?
        )?, finish: (@convention(c) (Conn?) -> Void)?,
        status: (@convention(c) (Conn?) -> ConnStatusType)?,
        transactionStatus: (@convention(c) (Conn?) -> PGTransactionStatusType)?,
        errorMessage: (@convention(c) (Conn?) -> UnsafeMutablePointer<CChar>?)?,
        backendPID: (@convention(c) (Conn?) -> Int32)?,
        exec: (@convention(c) (Conn?, UnsafePointer<CChar>?) -> Result?)?,
        execParams: (
            @convention(c) (
                Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?,
                UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?,
                UnsafePointer<Int32>?, Int32
            ) -> Result?
        )?,
        prepare: (
            @convention(c) (Conn?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?) -> Result?
        )?,
        execPrepared: (
            @convention(c) (
                Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32
            ) -> Result?
        )?,
        resultStatus: (@convention(c) (Result?) -> ExecStatusType)?,
        resultErrorMessage: (@convention(c) (Result?) -> UnsafeMutablePointer<CChar>?)?,
        resultErrorField: (@convention(c) (Result?, Int32) -> UnsafeMutablePointer<CChar>?)?,
        clear: (@convention(c) (Result?) -> Void)?, ntuples: (@convention(c) (Result?) -> Int32)?,
        nfields: (@convention(c) (Result?) -> Int32)?,
        fname: (@convention(c) (Result?, Int32) -> UnsafeMutablePointer<CChar>?)?,
        ftype: (@convention(c) (Result?, Int32) -> Oid)?,
        getisnull: (@convention(c) (Result?, Int32, Int32) -> Int32)?,
        getvalue: (@convention(c) (Result?, Int32, Int32) -> UnsafeMutablePointer<CChar>?)?,
        getlength: (@convention(c) (Result?, Int32, Int32) -> Int32)?,
        cmdTuples: (@convention(c) (Result?) -> UnsafeMutablePointer<CChar>?)?,
        conninfoParse: (
            @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
                -> UnsafeMutablePointer<PQconninfoOption>?
        )?,
        conninfo: (@convention(c) (Conn?) -> UnsafeMutablePointer<PQconninfoOption>?)?,
        conninfoFree: (@convention(c) (UnsafeMutablePointer<PQconninfoOption>?) -> Void)?,
        freemem: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
        setNoticeProcessor: (
            @convention(c) (Conn?, PQnoticeProcessor?, UnsafeMutableRawPointer?) -> PQnoticeProcessor?
        )?
    ) {
        guard let connectdbParams, let finish, let status, let transactionStatus, let errorMessage, let backendPID,
            let exec,
            let execParams, let prepare, let execPrepared, let resultStatus, let resultErrorMessage,
            let resultErrorField, let clear, let ntuples,
            let nfields, let fname, let ftype, let getisnull, let getvalue, let getlength, let cmdTuples,
            let conninfoParse, let conninfo, let conninfoFree, let freemem, let setNoticeProcessor
        else { return nil }
        self.connectdbParams = connectdbParams
        self.finish = finish
        self.status = status
        self.transactionStatus = transactionStatus
        self.errorMessage = errorMessage
        self.backendPID = backendPID
        self.exec = exec
        self.execParams = execParams
        self.prepare = prepare
        self.execPrepared = execPrepared
        self.resultStatus = resultStatus
        self.resultErrorMessage = resultErrorMessage
        self.resultErrorField = resultErrorField
        self.clear = clear
        self.ntuples = ntuples
        self.nfields = nfields
        self.fname = fname
        self.ftype = ftype
        self.getisnull = getisnull
        self.getvalue = getvalue
        self.getlength = getlength
        self.cmdTuples = cmdTuples
        self.conninfoParse = conninfoParse
        self.conninfo = conninfo
        self.conninfoFree = conninfoFree
        self.freemem = freemem
        self.setNoticeProcessor = setNoticeProcessor
    }

    /// Connection options as libpq reads them (a URI or `key=value` words), keyword to value; nil values left out.
    /// The values may hold a password: callers look, and never print them.
    func parse(_ conninfo: String) throws -> [(keyword: String, value: String, isSecret: Bool)] {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = conninfoParse(conninfo, &message) else {
            // libpq quotes the whole URI in some of these (an unclosed '[' of an IPv6 host): never its password.
            let reason =
                message.map {
                    PostgresLocation.scrubbed(
                        String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines), location: conninfo)
                } ?? "out of memory"
            if let message { freemem(message) }
            throw StoreError.postgres(
                "not a PostgreSQL connection string: \(reason)",
                hint: "give a URI (postgresql://user@host/database) or libpq's service=NAME")
        }
        defer { conninfoFree(options) }
        return Self.options(options)
    }

    static func options(_ options: UnsafeMutablePointer<PQconninfoOption>) -> [(
        keyword: String, value: String, isSecret: Bool
    )] {
        var result: [(keyword: String, value: String, isSecret: Bool)] = []
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val {
                let display = option.pointee.dispchar.map { String(cString: $0) } ?? ""
                result.append((String(cString: keyword), String(cString: value), display == "*"))
            }
            option += 1
        }
        return result
    }
}
