import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

extension TokenVault {
    struct KeysList: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the key slots (no passphrase needed).",
            discussion: """
                Name, form (box; legacy for the slot a v1-v3 vault came with, until it is converted), KDF level, when \
                it was made and when its passphrase last changed.
                """)

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run(_ context: Context) async throws {
            let slots = try openDatabase(context).keySlots()
            func level(_ slot: KeySlot) -> String {
                UnlockedVault.level(of: slot, kdfParameters: context.kdfParameters)?.rawValue
                    ?? "unknown (\(slot.kdfOpsLimit) passes, \(slot.kdfMemLimit >> 20) MiB)"
            }
            if json {
                context.console.out(
                    Format.json(
                        slots.map { slot in
                            KeySlotReport(
                                name: slot.name, form: slot.form.rawValue, kdfLevel: level(slot),
                                kdfOpslimit: slot.kdfOpsLimit, kdfMemlimit: slot.kdfMemLimit,
                                createdAt: slot.createdAt, changedAt: slot.changedAt)
                        }) + "\n")
                return
            }
            var rows = [["NAME", "FORM", "KDF", "CREATED", "PASSPHRASE CHANGED"]]
            for slot in slots {
                rows.append([
                    slot.name, slot.form.rawValue, level(slot), Format.timestamp(slot.createdAt),
                    Format.timestamp(slot.changedAt),
                ])
            }
            context.console.out(Table.render(rows))
            if slots.contains(where: { $0.form == .legacy }) {
                context.console.err(
                    "tokenvault: hint: a 'legacy' slot (from a v1-v3 vault) is converted by the next 'keys' command or 'passwd' opened with its passphrase; 'keys rotate' needs that first\n"
                )
            }
        }
    }
}
