-- Schema version 5. Never edit this file once it has shipped: add a new one.
-- Each stored token pair gets a random id (`account.pair`), bound into the seal labels of its tokens, and the audit
-- entry that stored it (or removed it) records that id (`audit_entry.pair`; '' for an entry that left no pair, NULL
-- for an entry that did not change the pair). A row put back from an older copy, or restored after a revocation,
-- then disagrees with the newest MAC'd entry of its account. Rows and entries written before this version have
-- NULL in both and keep the labels they were sealed under.
ALTER TABLE account ADD COLUMN pair TEXT;
ALTER TABLE audit_entry ADD COLUMN pair TEXT;
