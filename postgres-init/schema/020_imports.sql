-- 020_imports.sql: captured sessions imported with 'sva import' (Commands/ImportCapture.cs).
--
-- One row per (capture content, kernel version, format, mapping version): the same capture imported
-- again under the same kernel finds its session here instead of making a copy. 'mapping' is the
-- version of the observation -> call mapping (ImportCaptureHandler.MappingVersion): when the mapping
-- changes, a capture imports into a new session instead of reporting one made by the old mapping. 'running' until the last batch is
-- committed, then 'complete' with the summary the import printed.
--
-- The resume checkpoint is not kept here: it is the metadata of the session's last event
-- ({"import": {"batch": k, "items": n}}), written in the same transaction as the batch, so it can
-- never disagree with what was committed.
--
-- Idempotent (CREATE ... IF NOT EXISTS); run by pg-up.sh and PgEventStore.EnsureSchemaAsync.
CREATE TABLE IF NOT EXISTS imports (
    session       text PRIMARY KEY,
    content_hash  text NOT NULL,
    kernel        text NOT NULL,
    format        text NOT NULL,
    mapping       integer NOT NULL,
    file          text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete')),
    lines         bigint,
    events        bigint,
    summary       jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    UNIQUE (content_hash, kernel, format, mapping)
);

DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer') THEN
        GRANT SELECT, INSERT, UPDATE ON imports TO sva_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader') THEN
        GRANT SELECT ON imports TO sva_reader;
    END IF;
END
$grants$;

INSERT INTO schema_versions (version) VALUES (20) ON CONFLICT DO NOTHING;
