import Foundation

/// A value bound to a statement's parameter or read from a column. Parameters always travel bound, in libpq's
/// binary format (bytea as its raw bytes), never spliced into SQL.
enum PGValue: Equatable, Sendable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bytes([UInt8])
    case bool(Bool)
}

extension PGValue {
    init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    init(_ value: [UInt8]?) { self = value.map { .bytes($0) } ?? .null }
    init(_ value: Double?) { self = value.map { .double($0) } ?? .null }
    init(_ value: Date?) { self = value.map { .double($0.unix) } ?? .null }
    init(_ value: Bool?) { self = value.map { .bool($0) } ?? .null }
}

/// One row of a result, its columns by name.
struct PGRow {
    let columns: [String: Int]
    let values: [PGValue]

    subscript(_ column: String) -> PGValue {
        guard let index = columns[column] else { return .null }
        return values[index]
    }

    private func mismatch(_ column: String, _ expected: String) -> StoreError {
        .database("column \(column) is not \(expected) (\(self[column]))")
    }

    func string(_ column: String) throws -> String {
        guard case .text(let value) = self[column] else { throw mismatch(column, "text") }
        return value
    }

    func optionalString(_ column: String) throws -> String? {
        if case .null = self[column] { return nil }
        return try string(column)
    }

    func int(_ column: String) throws -> Int64 {
        switch self[column] {
        case .int(let value): return value
        default: throw mismatch(column, "an integer")
        }
    }

    func double(_ column: String) throws -> Double {
        guard case .double(let value) = self[column] else { throw mismatch(column, "a number") }
        return value
    }

    func optionalDouble(_ column: String) throws -> Double? {
        if case .null = self[column] { return nil }
        return try double(column)
    }

    func date(_ column: String) throws -> Date { Date(unix: try double(column)) }
    func optionalDate(_ column: String) throws -> Date? { try optionalDouble(column).map(Date.init(unix:)) }

    func bytes(_ column: String) throws -> [UInt8] {
        guard case .bytes(let value) = self[column] else { throw mismatch(column, "bytes") }
        return value
    }

    func optionalBytes(_ column: String) throws -> [UInt8]? {
        if case .null = self[column] { return nil }
        return try bytes(column)
    }

    func bool(_ column: String) throws -> Bool {
        guard case .bool(let value) = self[column] else { throw mismatch(column, "a boolean") }
        return value
    }

    func optionalBool(_ column: String) throws -> Bool? {
        if case .null = self[column] { return nil }
        return try bool(column)
    }
}

/// What a statement returned: its rows and how many rows it changed.
struct PGResult {
    var rows: [PGRow]
    var changes: Int
}

/// An error the server or libpq reported, before it is put in the store's words.
struct PGFailure: Error {
    var message: String
    /// SQLSTATE, when the server sent one.
    var sqlState: String?
    /// The connection is gone (server restart, network): nothing more can be done on it.
    var connectionLost: Bool
}
