-- Async read model: every binding interval of every session, for audit ("who bound which mm to which
-- device with which PASID, when, for how long"). Maintained by the projection daemon from the global
-- log; its checkpoint (projection_checkpoints, name 'audit_bindings') is written in the same
-- transaction as its rows.
CREATE TABLE IF NOT EXISTS audit_bindings (
    session       text    NOT NULL,
    handle        text    NOT NULL,
    issued_seq    bigint  NOT NULL,
    device        text    NOT NULL,
    pasid         integer NOT NULL,
    mm            text    NOT NULL,
    domain        text,
    bound_at      timestamptz NOT NULL,
    bound_by      text,
    unbound_seq   bigint,
    unbound_at    timestamptz,
    unbound_by    text,
    PRIMARY KEY (session, handle, issued_seq)
);
CREATE INDEX IF NOT EXISTS audit_bindings_by_device_pasid ON audit_bindings (device, pasid);
CREATE INDEX IF NOT EXISTS audit_bindings_by_mm ON audit_bindings (session, mm);

DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON audit_bindings TO sva_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader') THEN
        GRANT SELECT ON audit_bindings TO sva_reader;
    END IF;
END
$grants$;

INSERT INTO schema_versions (version) VALUES (11) ON CONFLICT DO NOTHING;
