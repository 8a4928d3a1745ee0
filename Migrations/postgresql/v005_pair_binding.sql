-- PostgreSQL schema version 5: the meaning of ../v005_pair_binding.sql. Never edit this file once it has shipped:
-- add a new one. Each stored pair's random id, in its row and in the audit entry that stored it; the append-only
-- function is made again so that re-keying (`keys rotate`) still changes `mac` and nothing else, `pair` included.
ALTER TABLE account ADD COLUMN pair TEXT;
ALTER TABLE audit_entry ADD COLUMN pair TEXT;
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('tokenvault.rewrite_audit_macs', true) = 'on'
       AND (NEW.seq, NEW.at, NEW.account, NEW.integration, NEW.event, NEW.trigger, NEW.outcome,
            NEW.access_expires_before, NEW.access_expires_after, NEW.refresh_expires_before,
            NEW.refresh_expires_after, NEW.refresh_token_changed, NEW.detail, NEW.pair)
           IS NOT DISTINCT FROM
           (OLD.seq, OLD.at, OLD.account, OLD.integration, OLD.event, OLD.trigger, OLD.outcome,
            OLD.access_expires_before, OLD.access_expires_after, OLD.refresh_expires_before,
            OLD.refresh_expires_after, OLD.refresh_token_changed, OLD.detail, OLD.pair)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
