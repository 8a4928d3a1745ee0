import ArgumentParser
import Foundation
import TokenVaultCore
import VaultCrypto

// Types the command line takes as arguments.

extension EnvExport.Style: ExpressibleByArgument {}

extension KDFParameters.Level: ExpressibleByArgument {}

/// "10m", "1d", "1d12h", "90s", "2w"; a bare number is seconds.
struct DurationArgument: ExpressibleByArgument, Sendable, Equatable {
    var seconds: TimeInterval

    init(seconds: TimeInterval) { self.seconds = seconds }

    init?(argument: String) {
        if let plain = Double(argument), plain >= 0 {
            seconds = plain
            return
        }
        var total = 0.0
        var number = ""
        for ch in argument.lowercased() {
            if ch.isNumber {
                number.append(ch)
                continue
            }
            let unit: Double
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: return nil
            }
            guard let n = Double(number) else { return nil }
            total += n * unit
            number = ""
        }
        guard number.isEmpty, !argument.isEmpty else { return nil }
        seconds = total
    }

    /// How a default shows in --help ("10m", not the struct).
    var defaultValueDescription: String { Format.span(Int(seconds)) }
}
