import CLibPQ
import Foundation

/// One libpq connection. Not thread-safe (libpq's connections are not): ``PostgresConnection`` guards it with a
/// lock, and every method here runs under that lock.
final class PGSession {
    let pq: LibPQ
    /// The location as given (checked to carry no password).
    let conninfo: String
    private(set) var conn: LibPQ.Conn?
    /// Statements prepared on this connection, by their SQL: an import or a refresh-all runs the same few
    /// statements once per account, and the server then parses and plans each once.
    private var prepared: [String: String] = [:]
    /// Counts the connections made: a session-level lock taken under one number is gone once it has changed.
    private(set) var generation = 0

    init(pq: LibPQ, conninfo: String) {
        self.pq = pq
        self.conninfo = conninfo
    }

    deinit { disconnect() }

    func disconnect() {
        if let conn { pq.finish(conn) }
        conn = nil
        prepared = [:]
    }

    /// Connects (again). libpq takes the password, if one is needed, from ~/.pgpass, PGPASSWORD or the service
    /// file; TLS is its sslmode.
    func connect() throws {
        disconnect()
        // `dbname` is expanded as a URI or conninfo string; the entries before it are defaults it may override.
        var keywords = ["fallback_application_name", "dbname"]
        var values = ["tokenvault", conninfo]
        if ProcessInfo.processInfo.environment["PGCONNECT_TIMEOUT"] == nil {
            keywords.insert("connect_timeout", at: 0)
            values.insert("15", at: 0)
        }
        let cKeywords = keywords.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer { (cKeywords + cValues).forEach { free($0) } }
        let made = (cKeywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { k in
            (cValues.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { v in
                pq.connectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let made else { throw PGFailure(message: "out of memory", sqlState: nil, connectionLost: true) }
        guard pq.status(made) == CONNECTION_OK else {
            let message = pq.errorMessage(made).map { String(cString: $0) } ?? "cannot connect"
            pq.finish(made)
            throw PGFailure(message: Self.clean(message), sqlState: nil, connectionLost: true)
        }
        // Notices (e.g. from the migrations) would otherwise go to stderr, into the user's output.
        _ = pq.setNoticeProcessor(made, { _, _ in }, nil)
        conn = made
        generation += 1
    }

    var isConnected: Bool { conn.map { pq.status($0) == CONNECTION_OK } ?? false }

    /// Whether a transaction is open (or failed and waits for ROLLBACK) on this connection.
    var inTransaction: Bool {
        guard let conn else { return false }
        let status = pq.transactionStatus(conn)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    var backendPID: Int32 { conn.map { pq.backendPID($0) } ?? 0 }

    /// Runs SQL without parameters, one or several statements (BEGIN, COMMIT, a migration's file).
    func execute(_ sql: String) throws {
        let conn = try connected()
        try check(pq.exec(conn, sql), sql: sql).map { pq.clear($0) }
    }

    /// Runs one statement (prepared once per connection) with its parameters bound in binary format; results come
    /// in binary format too.
    @discardableResult
    func query(_ sql: String, _ parameters: [PGValue] = []) throws -> PGResult {
        let conn = try connected()
        var types: [Oid] = []
        var buffers: [[UInt8]?] = []
        for parameter in parameters {
            switch parameter {
            case .null:
                types.append(0)
                buffers.append(nil)
            case .int(let v):
                types.append(20)
                buffers.append(withUnsafeBytes(of: v.bigEndian, Array.init))
            case .double(let v):
                types.append(701)
                buffers.append(withUnsafeBytes(of: v.bitPattern.bigEndian, Array.init))
            case .text(let v):
                types.append(25)
                buffers.append(Array(v.utf8))
            case .bytes(let v):
                types.append(17)
                buffers.append(v)
            case .bool(let v):
                types.append(16)
                buffers.append([v ? 1 : 0])
            }
        }
        let lengths = buffers.map { Int32($0?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: parameters.count)
        // Pointers into the buffers for the call's duration (an empty buffer still needs a non-null pointer).
        let storage = buffers.map { buffer -> UnsafeMutablePointer<CChar>? in
            guard let buffer else { return nil }
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: max(buffer.count, 1))
            buffer.withUnsafeBytes { raw in
                if let base = raw.baseAddress {
                    UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: buffer.count)
                }
            }
            return pointer
        }
        defer { storage.forEach { $0?.deallocate() } }
        let name = try statement(sql, types: types, conn: conn)
        let result = storage.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            pq.execPrepared(conn, name, Int32(parameters.count), values.baseAddress, lengths, formats, 1)
        }
        guard let result = try check(result, sql: sql) else { return PGResult(rows: [], changes: 0) }
        defer { pq.clear(result) }
        return try decode(result)
    }

    /// The prepared statement for `sql`, prepared now if this connection has not seen it, with the types of this
    /// first call's parameters (a NULL's is left to the server: every call site binds one Swift type per
    /// parameter, so later calls agree).
    private func statement(_ sql: String, types: [Oid], conn: LibPQ.Conn) throws -> String {
        if let name = prepared[sql] { return name }
        let name = "tv\(prepared.count + 1)"
        try check(pq.prepare(conn, name, sql, Int32(types.count), types), sql: sql).map { pq.clear($0) }
        prepared[sql] = name
        return name
    }

    private func connected() throws -> LibPQ.Conn {
        if let conn { return conn }
        try connect()
        return conn!
    }

    /// The result if the statement succeeded, else the server's error (the connection marked lost if it is).
    private func check(_ result: LibPQ.Result?, sql: String) throws -> LibPQ.Result? {
        let status = result.map { pq.resultStatus($0) } ?? PGRES_FATAL_ERROR
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY { return result }
        var message = result.flatMap { pq.resultErrorMessage($0) }.map { String(cString: $0) } ?? ""
        if message.isEmpty, let conn { message = pq.errorMessage(conn).map { String(cString: $0) } ?? "" }
        // 'C' is PG_DIAG_SQLSTATE, a character macro Swift does not import.
        let state = result.flatMap { pq.resultErrorField($0, 67) }.map { String(cString: $0) }
        if let result { pq.clear(result) }
        let lost =
            conn.map { pq.status($0) != CONNECTION_OK } ?? true
            || state?.hasPrefix("08") == true || state?.hasPrefix("57P0") == true
        throw PGFailure(
            message: Self.clean(message.isEmpty ? "the statement failed" : message), sqlState: state,
            connectionLost: lost)
    }

    private func decode(_ result: LibPQ.Result) throws -> PGResult {
        let rowCount = pq.ntuples(result)
        let fieldCount = pq.nfields(result)
        var columns: [String: Int] = [:]
        var types: [Oid] = []
        for field in 0..<fieldCount {
            columns[pq.fname(result, field).map { String(cString: $0) } ?? ""] = Int(field)
            types.append(pq.ftype(result, field))
        }
        var rows: [PGRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [PGValue] = []
            values.reserveCapacity(Int(fieldCount))
            for field in 0..<fieldCount {
                if pq.getisnull(result, row, field) != 0 {
                    values.append(.null)
                    continue
                }
                let length = Int(pq.getlength(result, row, field))
                let bytes =
                    pq.getvalue(result, row, field).map {
                        UnsafeRawBufferPointer(start: UnsafeRawPointer($0), count: length)
                    } ?? UnsafeRawBufferPointer(start: nil, count: 0)
                values.append(try Self.value(bytes, type: types[Int(field)]))
            }
            rows.append(PGRow(columns: columns, values: values))
        }
        let changes = pq.cmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
        return PGResult(rows: rows, changes: changes)
    }

    /// A column in binary format, by its type's OID.
    private static func value(_ bytes: UnsafeRawBufferPointer, type: Oid) throws -> PGValue {
        func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            guard bytes.count == MemoryLayout<T>.size else {
                throw StoreError.database("a column of \(bytes.count) bytes is not an integer")
            }
            return T(bigEndian: bytes.loadUnaligned(as: T.self))
        }
        switch type {
        case 16: return .bool(bytes.first == 1)
        case 2278: return .null  // void (pg_advisory_xact_lock)
        case 17: return .bytes(Array(bytes))
        case 20: return .int(try integer(Int64.self))
        case 21: return .int(Int64(try integer(Int16.self)))
        case 23: return .int(Int64(try integer(Int32.self)))
        case 25, 1043, 19: return .text(String(decoding: bytes, as: UTF8.self))
        case 700: return .double(Double(Float(bitPattern: try integer(UInt32.self))))
        case 701: return .double(Double(bitPattern: try integer(UInt64.self)))
        default: throw StoreError.database("a column of an unexpected type (OID \(type))")
        }
    }

    /// libpq's messages end with a newline, may span lines and pad "ERROR:  "; one line reads better after
    /// "error:".
    static func clean(_ message: String) -> String {
        message.split(whereSeparator: \.isNewline)
            // libpq indents with tabs and double spaces ("…failed: \tIs the server running…"): one space each.
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}

/// A session guarded by a lock, with the retry rules: a read that finds the connection lost (a server restart)
/// connects again and runs once more; so does a write whose connection was lost before its COMMIT was sent
/// (rolled back for certain); a COMMIT whose outcome is unknown is an error of its own, never run again.
/// Blocking work for async callers runs on this connection's own queue, never on Swift's cooperative pool.
// @unchecked: its session wraps a libpq connection (a C pointer, not thread-safe), used only under `lock`.
final class PostgresConnection: @unchecked Sendable {
    private let lock = NSLock()
    private let session: PGSession
    private let queue: DispatchQueue
    /// As messages name the server (the location, which carries no password).
    let location: String

    init(pq: LibPQ, location: String, label: String) {
        session = PGSession(pq: pq, conninfo: location)
        self.location = location
        queue = DispatchQueue(label: "tokenvault.postgres.\(label)")
    }

    /// Connects now, so that opening a vault reports an unreachable server at once.
    func connect() throws {
        try lock.withLock {
            do { try session.connect() } catch let failure as PGFailure { throw words(failure) }
        }
    }

    func close() { lock.withLock { session.disconnect() } }

    var backendPID: Int32 { lock.withLock { session.backendPID } }

    /// Statements outside any transaction of ours (each its own), or a read-only transaction the body opens.
    func read<T>(_ body: (PGSession) throws -> T) throws -> T {
        try lock.withLock {
            do {
                return try attempt(body)
            } catch let failure as PGFailure where failure.connectionLost {
                // One reconnect: a restarted server, an idle connection the network dropped.
                do {
                    try session.connect()
                    return try attempt(body)
                } catch let failure as PGFailure { throw words(failure) }
            } catch let failure as PGFailure {
                throw words(failure)
            }
        }
    }

    private func attempt<T>(_ body: (PGSession) throws -> T) throws -> T {
        do {
            return try body(session)
        } catch {
            if session.isConnected && session.inTransaction { try? session.execute("ROLLBACK") }
            throw error
        }
    }

    /// One write transaction (READ COMMITTED; appending to the audit chain locks the header row).
    ///
    /// When the connection is found lost before COMMIT was sent (at BEGIN, or midway: a server restart), the server
    /// has rolled the transaction back, so it runs once more on a new connection: a refreshed pair is not lost to
    /// a restart. The body must therefore do nothing but use the transaction (every caller seals, MACs and
    /// writes). A COMMIT cut off is another matter: whether it landed is unknown, and it is never run again.
    func write<T>(_ body: (PGSession) throws -> T) throws -> T {
        try lock.withLock {
            var attempt = 0
            while true {
                attempt += 1
                do {
                    return try transaction(body)
                } catch let lost as LostBeforeCommit {
                    session.disconnect()
                    if attempt < 2 { continue }
                    throw StoreError.postgres(
                        "the connection to the PostgreSQL server \(location) was lost before a write was committed, twice; the server rolled it back, nothing was stored (\(lost.failure.message))",
                        hint: "run the command again once the server is reachable")
                } catch let failure as PGFailure {
                    throw words(failure)
                }
            }
        }
    }

    /// The connection went away before COMMIT was sent: the transaction is certainly rolled back.
    private struct LostBeforeCommit: Error {
        var failure: PGFailure
    }

    private func transaction<T>(_ body: (PGSession) throws -> T) throws -> T {
        do {
            try session.execute("BEGIN")
        } catch let failure as PGFailure where failure.connectionLost {
            throw LostBeforeCommit(failure: failure)
        }
        let value: T
        do {
            value = try body(session)
        } catch {
            if let failure = error as? PGFailure, failure.connectionLost { throw LostBeforeCommit(failure: failure) }
            if session.isConnected { try? session.execute("ROLLBACK") }
            throw error
        }
        do {
            try session.execute("COMMIT")
        } catch let failure as PGFailure where failure.connectionLost {
            session.disconnect()
            throw StoreError.postgres(
                "the connection to the PostgreSQL server \(location) was lost while committing: the change may or may not have been stored (\(failure.message))",
                hint:
                    "look before doing it again ('tokenvault list', 'tokenvault audit'); a refresh-all run again picks up where this one stopped"
            )
        }
        return value
    }

    /// Runs blocking work on this connection's queue and suspends the caller meanwhile.
    func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// The server's words in the store's error, with where it came from; never a connection secret (the
    /// location carries none, and libpq's messages name hosts and users, not passwords).
    func words(_ failure: PGFailure) -> StoreError {
        if failure.connectionLost, failure.message.contains("database \""), failure.message.contains("does not exist") {
            return .postgres(
                "PostgreSQL server \(location): \(failure.message)",
                hint:
                    "tokenvault keeps a vault in a database its administrator made ('createdb NAME', owned by your role); then run 'tokenvault init'"
            )
        }
        if failure.connectionLost {
            return .postgres(
                "PostgreSQL server \(location): \(failure.message)",
                hint:
                    "check that the server runs and accepts this host and user (pg_hba.conf); its password comes from ~/.pgpass, PGPASSWORD or the service file"
            )
        }
        if failure.sqlState == "42501" {  // insufficient_privilege
            return .postgres(
                "PostgreSQL: \(failure.message)",
                hint:
                    "this location's role may not do that: hosts get no UPDATE or DELETE on audit_entry and no schema changes, so 'tokenvault keys rotate', 'init' and upgrades run as the vault's owner role (the one that ran 'tokenvault init'): give a location with that role in --vault"
            )
        }
        return .database("PostgreSQL: \(failure.message)")
    }
}
