import Foundation

/// The agent's wire protocol, version 1: length-prefixed frames over a Unix socket.
///
/// A frame is a 4-byte big-endian length and that many bytes, at most ``maxFrame``. A request is
/// `[version 1][op][label length u16][label][data length u32][data]`; an answer is `[status][length u32][data]`,
/// status 0 for success (data: the result) and 1 for a refusal (data: a message in words). Anything malformed or
/// larger than the limits closes that connection and nothing else.
public enum AgentProtocol {
    public static let version: UInt8 = 1
    /// Sealed values are a few hundred bytes; a megabyte leaves room and bounds what one client can make us hold.
    public static let maxFrame = 1 << 20
    public static let maxLabel = 4096

    public enum Op: UInt8, Sendable {
        case seal = 1, open = 2, mac = 3
        /// Which vault, since when, until when (JSON).
        case status = 4
        /// Forget the key and exit.
        case lock = 5
    }

    public struct Request: Equatable, Sendable {
        public var op: Op
        public var label: String
        public var data: [UInt8]

        public init(op: Op, label: String = "", data: [UInt8] = []) {
            self.op = op
            self.label = label
            self.data = data
        }

        public func encoded() -> [UInt8] {
            let labelBytes = Array(label.utf8)
            var out: [UInt8] = [AgentProtocol.version, op.rawValue]
            out += be16(UInt16(labelBytes.count)) + labelBytes + be32(UInt32(data.count)) + data
            return out
        }

        /// Nil for anything but a well-formed version-1 request within the limits.
        public static func decode(_ bytes: [UInt8]) -> Request? {
            guard bytes.count >= 8, bytes[0] == AgentProtocol.version, let op = Op(rawValue: bytes[1]) else {
                return nil
            }
            let labelLength = Int(bytes[2]) << 8 | Int(bytes[3])
            guard labelLength <= AgentProtocol.maxLabel, bytes.count >= 4 + labelLength + 4 else { return nil }
            let labelBytes = bytes[4..<(4 + labelLength)]
            guard let label = String(validating: labelBytes, as: UTF8.self) else { return nil }
            let at = 4 + labelLength
            let dataLength =
                Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            guard bytes.count == at + 4 + dataLength else { return nil }
            return Request(op: op, label: label, data: Array(bytes[(at + 4)...]))
        }
    }

    public struct Answer: Equatable, Sendable {
        public var ok: Bool
        public var data: [UInt8]

        public init(ok: Bool, data: [UInt8]) {
            self.ok = ok
            self.data = data
        }

        public static func refusal(_ message: String) -> Answer { Answer(ok: false, data: Array(message.utf8)) }

        public func encoded() -> [UInt8] { [ok ? 0 : 1] + be32(UInt32(data.count)) + data }

        public static func decode(_ bytes: [UInt8]) -> Answer? {
            guard bytes.count >= 5, bytes[0] <= 1 else { return nil }
            let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
            guard bytes.count == 5 + length else { return nil }
            return Answer(ok: bytes[0] == 0, data: Array(bytes[5...]))
        }
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
    }
}
