/// What appending to the audit chain is on every store, once the store has read, inside its write transaction, the
/// newest entry (`lastSeq`, `lastMAC`; 0 and empty for none) and the head its header row records (`headSeq`,
/// `storedHead`). When they disagree (entries were deleted, the head was reset or its MAC removed), a
/// `tamper-detected` entry goes in first; then the entry, numbered after the recorded head as well as the newest
/// row, so that a gap left by deleted entries stays visible after later appends. `insert` writes one entry; the
/// store then records the returned entry as the new head, sealed with `headMAC`.
func appendToAuditChain(
    _ draft: AuditDraft, lastSeq: Int64, lastMAC: [UInt8], headSeq: Int64, storedHead: [UInt8],
    mac: (_ seq: Int64, _ draft: AuditDraft, _ previousMAC: [UInt8]) throws -> [UInt8],
    headMAC: (_ seq: Int64, _ entryMAC: [UInt8]) throws -> [UInt8],
    insert: (_ draft: AuditDraft, _ seq: Int64, _ mac: [UInt8]) throws -> Void
) throws -> AuditEntry {
    var previous = lastMAC
    var seq = max(lastSeq, headSeq) + 1
    if try headSeq != lastSeq || storedHead != headMAC(lastSeq, previous) {
        let warning = AuditDraft(
            at: draft.at, account: draft.account, integration: draft.integration, event: .tamperDetected,
            trigger: draft.trigger, outcome: .headMismatch,
            detail:
                "head record at entry \(headSeq)\(storedHead.isEmpty ? " without a MAC" : ""), newest entry \(lastSeq)")
        let warningMAC = try mac(seq, warning, previous)
        try insert(warning, seq, warningMAC)
        previous = warningMAC
        seq += 1
    }
    let entryMAC = try mac(seq, draft, previous)
    try insert(draft, seq, entryMAC)
    return AuditEntry(seq: seq, draft: draft, mac: entryMAC)
}
