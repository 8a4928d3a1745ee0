import ArgumentParser
import Foundation
import TokenVaultCore
import VaultStore

#if canImport(Glibc)
    import Glibc
#endif

/// `--to-user NAME | --to-uid N | --to-group NAME`, shared by `grant` and `ungrant`.
struct GranteeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The user (a name on this machine) to lend to.", valueName: "name"))
    var toUser: String?

    @Option(help: ArgumentHelp("The uid to lend to.", valueName: "n"))
    var toUid: UInt32?

    @Option(help: ArgumentHelp("The group (its members, by their groups) to lend to.", valueName: "name"))
    var toGroup: String?

    func validate() throws {
        let given = [toUser != nil, toUid != nil, toGroup != nil].filter { $0 }.count
        guard given == 1 else {
            throw ValidationError("give exactly one of --to-user, --to-uid and --to-group")
        }
    }

    /// The grantee as a number (the name looked up now), and the name to show.
    func resolve() throws -> (Grantee, String?) {
        if let toUid {
            return (.uid(toUid), getpwuid(toUid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } })
        }
        if let toUser {
            guard let entry = getpwnam(toUser) else {
                throw CLIError.usage("no user named '\(toUser)' on this machine", hint: "give --to-uid N instead")
            }
            return (.uid(entry.pointee.pw_uid), toUser)
        }
        let group = toGroup ?? ""
        guard let entry = getgrnam(group) else {
            throw CLIError.usage("no group named '\(group)' on this machine")
        }
        return (.gid(entry.pointee.gr_gid), group)
    }
}

extension TokenVault {
    struct GrantAccount: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant",
            abstract: "Let another user (or a group) be lent the account's access token by 'tokenvault serve'.",
            discussion: """
                Only the access token, never the refresh token or the client secret: the grantee asks the endpoint \
                of 'tokenvault serve' (GET /v1/accounts/NAME/token) and gets a fresh one each time; every other \
                account gets it 403. Grants are stored in the vault's audit log, MAC'd with its key, and audited. \
                Every token handed out is audited as 'lent', once per grantee and token.
                Examples:
                  tokenvault grant alice --to-user www-data
                  tokenvault grant alice --to-group deploy
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @OptionGroup var grantee: GranteeOptions

        func run(_ context: Context) async throws {
            let (who, name) = try grantee.resolve()
            let vault = try unlock(context)
            let made = try vault.grant(account: account, to: who, name: name, now: context.now())
            let label = "\(who)" + (name.map { " (\($0))" } ?? "")
            context.console.err(
                made
                    ? "Granted \(label) the access token of '\(account)'.\n"
                    : "\(label) already had the access token of '\(account)'.\n")
        }
    }

    struct UngrantAccount: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "ungrant",
            abstract: "Withdraw a grant: from its next request the grantee gets 403 for the account.",
            discussion: """
                A token already lent stays usable until it lapses (most providers cannot revoke one access token): \
                run 'tokenvault refresh ACCOUNT' as well to have a new one made and the grantee's copy go with the \
                old one's lifetime, or 'tokenvault revoke' to end them all.
                Example:
                  tokenvault ungrant alice --to-user www-data
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The account name.", completion: .accountNames)
        var account: String

        @OptionGroup var grantee: GranteeOptions

        func run(_ context: Context) async throws {
            let (who, name) = try grantee.resolve()
            let vault = try unlock(context)
            let label = "\(who)" + (name.map { " (\($0))" } ?? "")
            guard try vault.ungrant(account: account, from: who, now: context.now()) else {
                throw CLIError.usage(
                    "\(label) has no grant to '\(account)'", hint: "'tokenvault grants' lists the grants")
            }
            context.console.err("Withdrew the grant of '\(account)' to \(label).\n")
        }
    }

    struct ListGrants: VaultCommand {
        static let configuration = CommandConfiguration(
            commandName: "grants",
            abstract: "List who may be lent which account's access token.",
            discussion: """
                Read from the vault's audit log, verified with its key (a log that does not verify: exit 7).
                Example:
                  tokenvault grants --json
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "Only this account's grants.", completion: .accountNames)
        var account: String?

        @Flag(help: "Print JSON (an array of objects, as 'list --json').")
        var json = false

        struct Row: Encodable {
            var account: String
            var grantee: String
            var name: String?
            var since: String
        }

        func run(_ context: Context) async throws {
            let vault = try unlock(context)
            let rows = try vault.grants().filter { account == nil || $0.account == account }.map {
                Row(account: $0.account, grantee: "\($0.grantee)", name: $0.name, since: Format.timestamp($0.at))
            }
            if json {
                context.console.out(Format.json(rows) + "\n")
                return
            }
            guard !rows.isEmpty else {
                context.console.err("No grants.\n")
                return
            }
            for row in rows {
                context.console.out(
                    "\(row.account)\t\(row.grantee)\(row.name.map { " (\($0))" } ?? "")\tsince \(row.since)\n")
            }
        }
    }
}
