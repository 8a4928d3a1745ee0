import Foundation

/// One measured figure and its target. `met` is nil for figures that are only reported.
struct Figure {
    var section: String
    var name: String
    var value: String
    var target: String
    var met: Bool?
    var detail: String

    var verdict: String { met.map { $0 ? "met" : "MISSED" } ?? "-" }
    var line: String { "\(name): \(value) [target \(target): \(verdict)]" }
}

/// What the figures were measured on.
struct Machine {
    var cores: Int
    var cpu: String
    var kernel: String
    var date: String

    var summary: String { "\(cores) cores, \(cpu), Linux \(kernel), \(date)" }

    static func read() -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?" }
            ?? "?"
        var uts = utsname()
        uname(&uts)
        let kernel = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return Machine(
            cores: ProcessInfo.processInfo.activeProcessorCount, cpu: model, kernel: kernel,
            date: formatter.string(from: Date()))
    }
}

enum Report {
    static func table(_ figures: [Figure]) -> String {
        let rows = [["figure", "measured", "target", ""]] + figures.map { [$0.name, $0.value, $0.target, $0.verdict] }
        var widths = [Int](repeating: 0, count: 4)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { i, cell in cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }
            .joined(separator: "  ")
            return index == 0
                ? line + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") : line
        }.joined(separator: "\n")
    }

    static let begin = "<!-- bench:begin (written by make bench; edit outside these markers) -->"
    static let end = "<!-- bench:end -->"

    /// Rewrites the part of BENCHMARKS.md between the markers; the analysis written by hand around it stays.
    static func update(path: String, figures: [Figure], machine: Machine, command: String, runs: Int, elapsed: Double)
        throws
    {
        var measured = """
            \(begin)
            Measured \(machine.date) on \(machine.cores) cores (\(machine.cpu)), Linux \(machine.kernel), by `\(command)`
            (release build; medians of \(runs) runs unless a row says otherwise; the whole bench took \(String(format: "%.1f", elapsed / 60)) min).

            | figure | measured | target | |
            |---|---|---|---|

            """
        for f in figures {
            measured += "| \(f.name) | \(f.value) | \(f.target) | \(f.met.map { $0 ? "met" : "**missed**" } ?? "") |\n"
        }
        measured += "\nHow each figure was measured:\n\n"
        for f in figures { measured += "- **\(f.name)**: \(f.detail).\n" }
        measured += end
        let old = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let text: String
        if let b = old.range(of: begin), let e = old.range(of: end), b.lowerBound < e.lowerBound {
            text = old.replacingCharacters(in: b.lowerBound..<e.upperBound, with: measured)
        } else {
            text = "# tokenvault benchmarks\n\n" + measured + "\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
