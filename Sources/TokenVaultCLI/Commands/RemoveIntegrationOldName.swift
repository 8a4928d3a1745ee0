import ArgumentParser

extension TokenVault {
    /// The old name of `integration remove`.
    struct RemoveIntegrationOldName: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-integration", abstract: "Same as 'tokenvault integration remove'.",
            shouldDisplay: false)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: RemoveIntegrationOptions

        func run(_ context: Context) async throws {
            try await RemoveIntegration.remove(options.name, force: options.force, global: global, context: context)
        }
    }
}
