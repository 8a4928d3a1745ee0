import Foundation
import TokenVaultCLI
import VaultCrypto

ProcessHardening.disableCoreDumps()
NetworkingDirectories.keepOutOfUserDirectories()
exit(await TokenVault.run(arguments: Array(CommandLine.arguments.dropFirst()), context: .live()))
