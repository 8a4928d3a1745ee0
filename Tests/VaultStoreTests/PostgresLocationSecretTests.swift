import Foundation
import Testing

@testable import VaultStore

/// A PostgreSQL location that carries a password is refused and never repeated, also when it does not parse:
/// libpq quotes a whole URI in some of its syntax errors (an unclosed '[' of an IPv6 host).
@Suite struct PostgresLocationSecretTests {
    static let secret = "s3cret" + String(UUID().uuidString.prefix(8))

    static var malformed: [String] {
        [
            "postgresql://alice:\(secret)@[::1/vault",
            "postgresql://alice:\(secret)@[/vault",
            "postgres://alice:\(secret)@db.example:99999999999/vault",
            "postgresql://alice:\(secret)@db/vault?sslmode",
            "postgresql://db/vault?password=\(secret)&sslmode",
            "postgresql://db/vault?sslpassword=\(secret)&x=%zz",
            "host=/tmp password=\(secret) dbname",
            "host=/tmp password='\(secret) dbname=v",
            "host=/tmp password = \(secret) 'dbname",
            "dbname=v PassWord=\(secret) nonsense",
        ]
    }

    @Test(arguments: malformed)
    func aMalformedLocationWithAPasswordIsNeverRepeated(_ location: String) {
        do {
            _ = try VaultStores.open(location)
            Issue.record("\(location) was opened")
        } catch {
            let text = "\(error.localizedDescription) \((error as? StoreError)?.hint ?? "")"
            #expect(!text.contains(Self.secret), "\(text)")
        }
        #expect(throws: (any Error).self) {
            try VaultStores.create(location, header: sampleHeader(), auditHeadMAC: nil)
        }
        #expect(!VaultStores.warnings(forLocation: location).joined().contains(Self.secret))
        let named = VaultStores.named(location)
        #expect(!named.contains(Self.secret) && named.contains("***"), "\(named)")
    }

    @Test func aLocationIsNamedWithoutItsPasswordAndOtherwiseAsItIs() {
        #expect(
            VaultStores.named("postgresql://alice:pw@db.example:5432/vault?sslmode=verify-full")
                == "postgresql://alice:***@db.example:5432/vault?sslmode=verify-full")
        #expect(
            VaultStores.named("postgresql://db/vault?password=pw&sslmode=require")
                == "postgresql://db/vault?password=***&sslmode=require")
        #expect(VaultStores.named("host=db password='p w\\'x' dbname=vault") == "host=db password=*** dbname=vault")
        #expect(VaultStores.named("postgresql://alice@db/vault") == "postgresql://alice@db/vault")
        #expect(VaultStores.named("service=tokenvault") == "service=tokenvault")
        #expect(VaultStores.named("/home/a/password=x/vault.db") == "/home/a/password=x/vault.db")
    }
}
