// The provider sandbox: a local OAuth provider in six providers' shapes (see SandboxProgram).
import ProviderSandbox

await SandboxProgram.main(name: "provider-sandbox")
