import Foundation
import Testing
@testable import VaultStore

/// The audit log's triggers and outcomes are enums whose text is what is stored and MAC'd: the text of every
/// case must stay exactly what earlier versions wrote (or old chains stop verifying), and text no case knows
/// must survive a round trip unchanged.
@Suite struct AuditVocabularyTests {
    @Test func storedTriggerTextIsStableAndUnknownTextIsKept() {
        let written = ["authorize", "authorize --device", "import", "refresh", "refresh-all", "token", "env", "exec",
                       "whoami", "revoke", "revoke --local", "integration edit", "remove-integration"]
        for text in written {
            let trigger = AuditTrigger(text)
            #expect(trigger.rawValue == text)
            if case .other = trigger { Issue.record("'\(text)' should be a known trigger") }
        }
        #expect(AuditTrigger("cron job 7") == .other("cron job 7") && AuditTrigger("cron job 7").rawValue == "cron job 7")
        #expect(AuditTrigger.refreshAll.rawValue == "refresh-all" && AuditTrigger.revokeLocal.rawValue == "revoke --local")
    }

    @Test func storedOutcomeTextIsStableAndUnknownTextIsKept() {
        let cases: [(AuditOutcome, String)] = [
            (.ok, "ok"), (.replacedPair, "ok, replaced the previous pair"),
            (.replacedPairAnotherPerson, "ok, replaced the previous pair: another person"),
            (.needsReauthorizationInvalidGrant, "needs re-authorization (invalid_grant)"),
            (.needsReauthorizationAccessTokenRefused, "needs re-authorization (the provider refused the access token)"),
            (.failedPairUnchanged, "failed, pair unchanged"), (.removedLocally, "removed locally"),
            (.revokedAt("webex"), "revoked at webex and removed locally"),
            (.revokeFailedRemovedLocally, "removed locally; revoking at the provider failed"),
            (.headMismatch, "the log's head did not match its newest entry: entries were removed or the head was edited"),
        ]
        for (outcome, text) in cases {
            #expect(outcome.rawValue == text)
            #expect(AuditOutcome(text) == outcome)
        }
        #expect(AuditOutcome.integrationChanged(integration: "w", field: "client secret", replaced: true).rawValue
            == "integration 'w': client secret replaced")
        #expect(AuditOutcome("something new").rawValue == "something new")
        #expect(AuditOutcome.ok.isSuccess && !AuditOutcome.failedPairUnchanged.isSuccess)
    }
}
