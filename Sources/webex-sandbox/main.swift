// The provider sandbox under its old name, for scripts written before it served six providers' shapes.
import ProviderSandbox

await SandboxProgram.main(name: "webex-sandbox")
