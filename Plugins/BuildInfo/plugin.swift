import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` for the target it is applied to: the version from the top-level `VERSION` file (the one
/// place it is written) and the commit the sources were built from (`packaging/build-info.sh`; no network).
///
/// A build command, not a prebuild one: SwiftPM compiled a prebuild command's changed output only at the build after
/// (the binary named the previous commit). Its inputs are what the text depends on: VERSION, the script, git's HEAD,
/// the branch's ref, packed-refs and index, and every source file of the package, so that a commit, a checkout or an
/// edit (the `-dirty` mark) reruns it in the same build. The script rewrites the file only when its text changes, so
/// a rerun that finds the same commit recompiles nothing.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let outputDirectory = context.pluginWorkDirectoryURL.appending(path: "generated")
        let output = outputDirectory.appending(path: "BuildInfo.swift")
        var inputs = ["VERSION", "Package.swift", "packaging/build-info.sh", "packaging/COMMIT"].map {
            root.appending(path: $0)
        }
        inputs += Self.gitFiles(root)
        for case let module as SourceModuleTarget in context.package.targets {
            inputs += module.sourceFiles.map(\.url)
        }
        let existing = inputs.filter { FileManager.default.fileExists(atPath: $0.path) }
        return [
            .buildCommand(
                displayName: "tokenvault build info (VERSION, commit)",
                executable: URL(filePath: "/bin/sh"),
                arguments: [root.appending(path: "packaging/build-info.sh").path, root.path, outputDirectory.path],
                inputFiles: existing,
                outputFiles: [output]
            )
        ]
    }

    /// The files of git's that change with a commit or a checkout: HEAD, the branch's ref, packed-refs, and the index.
    /// `.git` is a directory in a clone, or a file naming the git directory in a worktree (whose refs live in the
    /// common directory named by its `commondir` file).
    static func gitFiles(_ root: URL) -> [URL] {
        let dotGit = root.appending(path: ".git")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isDirectory) else { return [] }
        var gitDirectory = dotGit
        if !isDirectory.boolValue {
            guard let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir:") else {
                return []
            }
            let path = text.dropFirst("gitdir:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            gitDirectory = path.hasPrefix("/") ? URL(filePath: path) : root.appending(path: path)
        }
        var common = gitDirectory
        if let text = try? String(contentsOf: gitDirectory.appending(path: "commondir"), encoding: .utf8) {
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            common = path.hasPrefix("/") ? URL(filePath: path) : gitDirectory.appending(path: path)
        }
        let head = gitDirectory.appending(path: "HEAD")
        var files = [head, gitDirectory.appending(path: "index"), common.appending(path: "packed-refs")]
        if let text = try? String(contentsOf: head, encoding: .utf8), text.hasPrefix("ref:") {
            let ref = text.dropFirst("ref:".count).trimmingCharacters(in: .whitespacesAndNewlines)
            files.append(common.appending(path: ref))
        }
        return files.map { $0.standardizedFileURL }
    }
}
