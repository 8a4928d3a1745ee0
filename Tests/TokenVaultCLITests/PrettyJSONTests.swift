import Foundation
import Testing
@testable import TokenVaultCLI
import TokenVaultCore

@Suite struct PrettyJSONTests {
    private func foundation(_ value: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// Byte for byte what JSONSerialization writes, on random reports: nested dictionaries and arrays (empty ones
    /// too), keys of letters and underscores, strings with quotes, backslashes, slashes, control characters and
    /// non-ASCII text, integers, booleans and null.
    @Test func writesWhatJSONSerializationWrites() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["a", "b", "_", "z", "é", "€", "/", "\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{08}", "\u{0C}", "\u{1F}", "\u{7F}", " ", "😀"]
        func randomString() -> String { (0..<Int.random(in: 0...8, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined() }
        func randomKey() -> String {
            String((0..<Int.random(in: 1...6, using: &generator)).map { _ in Array("abxyz_")[Int.random(in: 0..<6, using: &generator)] })
        }
        func randomValue(depth: Int) -> Any {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return randomString()
            case 1: return Bool.random(using: &generator)
            case 2: return Int.random(in: -1_000_000...1_000_000, using: &generator)
            case 3: return NSNull()
            case 4: return Int64.random(in: Int64.min...Int64.max, using: &generator)
            case 5: return (0..<Int.random(in: 0...4, using: &generator)).map { _ in randomValue(depth: depth + 1) }
            default:
                var d: [String: Any] = [:]
                for _ in 0..<Int.random(in: 0...5, using: &generator) { d[randomKey()] = randomValue(depth: depth + 1) }
                return d
            }
        }
        for _ in 0..<500 {
            var report: [String: Any] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) { report[randomKey()] = randomValue(depth: 0) }
            let mine = try #require(PrettyJSON.text(report))
            #expect(mine == foundation(report))
        }
    }

    /// Doubles as Foundation writes them; keys Foundation sorts its own way are left to JSONSerialization.
    @Test func doublesAndOtherKeys() {
        for d in [1.5, 3.0, 0.1, 1234567.891, 1e21, -0.0, 0.123] {
            #expect(PrettyJSON.text(["duration_seconds": d] as [String: Any]) == foundation(["duration_seconds": d] as [String: Any]))
        }
        #expect(PrettyJSON.text(["a2": 1, "a10": 2] as [String: Any]) == nil)
        #expect(PrettyJSON.text(["Alice": 1] as [String: Any]) == nil)
        #expect(Format.json(["duration_seconds": 1.5, "a10": 2, "a2": 1] as [String: Any]) == foundation(["duration_seconds": 1.5, "a10": 2, "a2": 1] as [String: Any]))
    }
}
