import Foundation
import Testing

@testable import VaultStore

/// The audit log's triggers and outcomes are enums whose text is what is stored and MAC'd: the text of every
/// case must stay exactly what earlier versions wrote (or old chains stop verifying), and text no case knows
/// must survive a round trip unchanged.
@Suite struct AuditVocabularyTests {
    @Test func storedTriggerTextIsStableAndUnknownTextIsKept() {
        let written = [
            "authorize", "authorize --device", "import", "refresh", "refresh-all", "token", "env", "exec",
            "whoami", "revoke", "revoke --local", "integration edit", "remove-integration",
            "keys add", "keys remove", "keys rotate", "passwd",
        ]
        for text in written {
            let trigger = AuditTrigger(text)
            #expect(trigger.rawValue == text)
            if case .other = trigger { Issue.record("'\(text)' should be a known trigger") }
        }
        #expect(
            AuditTrigger("cron job 7") == .other("cron job 7") && AuditTrigger("cron job 7").rawValue == "cron job 7")
        #expect(
            AuditTrigger.refreshAll.rawValue == "refresh-all" && AuditTrigger.revokeLocal.rawValue == "revoke --local")
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
            (
                .headMismatch,
                "the log's head did not match its newest entry: entries were removed or the head was edited"
            ),
            (.keySlotChanged(slot: "bob", change: "added"), "key slot 'bob' added"),
            (.keySlotChanged(slot: "ci-host.1", change: "removed"), "key slot 'ci-host.1' removed"),
            (.keySlotChanged(slot: "main", change: "given a new passphrase"), "key slot 'main' given a new passphrase"),
            (.masterKeyReplaced, "master key replaced"),
        ]
        for (outcome, text) in cases {
            #expect(outcome.rawValue == text)
            #expect(AuditOutcome(text) == outcome)
        }
        #expect(
            AuditOutcome.integrationChanged(integration: "w", field: "client secret", replaced: true).rawValue
                == "integration 'w': client secret replaced")
        #expect(AuditOutcome("something new").rawValue == "something new")
        // Text that only starts like a key slot's stays as it is.
        for text in ["key slot 'x'", "key slot 'x' ", "key slot x added", "key slot 'unterminated"] {
            #expect(AuditOutcome(text) == .other(text), "\(text)")
        }
        #expect(AuditOutcome.ok.isSuccess && !AuditOutcome.failedPairUnchanged.isSuccess)
    }

    /// Events are stored by their text too; an event no case knows makes the entry unreadable, so the text of each
    /// must never change.
    @Test func storedEventTextIsStable() {
        let written: [(AuditEvent, String)] = [
            (.imported, "imported"), (.authorized, "authorized"), (.refreshed, "refreshed"), (.revoked, "revoked"),
            (.refreshFailed, "refresh-failed"), (.tamperDetected, "tamper-detected"),
            (.accessTokenRejected, "access-token-rejected"), (.integrationEdited, "integration-edited"),
            (.keySlotAdded, "key-slot-added"), (.keySlotRemoved, "key-slot-removed"),
            (.passphraseChanged, "passphrase-changed"), (.masterKeyRotated, "master-key-rotated"),
            (.granted, "granted"), (.ungranted, "ungranted"), (.lent, "lent"),
        ]
        #expect(written.count == AuditEvent.allCases.count)
        for (event, text) in written {
            #expect(event.rawValue == text)
            #expect(AuditEvent(rawValue: text) == event)
        }
    }
}
