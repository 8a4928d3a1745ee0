import Foundation
import TokenVaultCLI
import VaultCrypto

ProcessHardening.disableCoreDumps()
exit(await TokenVault.run(arguments: Array(CommandLine.arguments.dropFirst()), context: .live()))
