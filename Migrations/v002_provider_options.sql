-- Schema version 2. Never edit this file once it has shipped: add a new one.
-- Per-integration provider settings as JSON (a Microsoft tenant; a generic provider's endpoint URLs and client
-- authentication). NULL for a preset used as it is, which is every integration written before version 2.
-- The value is bound into the label the client secret is sealed under: an edited endpoint fails to open it.
ALTER TABLE integration ADD COLUMN provider_options TEXT;
