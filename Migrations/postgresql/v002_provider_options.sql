-- PostgreSQL schema version 2: the meaning of ../v002_provider_options.sql. Never edit this file once it has
-- shipped: add a new one. Per-integration provider settings as JSON, NULL for a preset used as it is; bound into
-- the label the client secret is sealed under.
ALTER TABLE integration ADD COLUMN provider_options TEXT;
