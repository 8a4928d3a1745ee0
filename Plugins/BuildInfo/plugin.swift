import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` for the target it is applied to: the version from the top-level `VERSION` file (the one
/// place it is written) and the commit the sources were built from. A prebuild command, so it runs at every build
/// (a new commit needs no clean build); `packaging/build-info.sh` rewrites the file only when its text changes.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        return [
            .prebuildCommand(
                displayName: "tokenvault build info (VERSION, commit)",
                executable: URL(filePath: "/bin/sh"),
                arguments: [root.appending(path: "packaging/build-info.sh").path, root.path, output.path],
                outputFilesDirectory: output
            ),
        ]
    }
}
