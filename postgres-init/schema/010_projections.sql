-- Inline read models of Sva.EventSourced, one row per kernel object of each session.
-- They are a function of the log: `sva projections rebuild` recomputes them, `verify` compares.
CREATE TABLE IF NOT EXISTS proj_devices (
    session     text    NOT NULL,
    device      text    NOT NULL,
    max_pasids  integer NOT NULL,
    grp         integer NOT NULL,
    sva         boolean NOT NULL,
    iopf        boolean NOT NULL,
    PRIMARY KEY (session, device)
);

-- The PASID table of each device: what the IOMMU is programmed with at (device, PASID).
CREATE TABLE IF NOT EXISTS proj_pasid_table (
    session  text    NOT NULL,
    device   text    NOT NULL,
    pasid    integer NOT NULL,
    domain   text,
    mm       text,
    mode     text    NOT NULL,
    PRIMARY KEY (session, device, pasid)
);
CREATE INDEX IF NOT EXISTS proj_pasid_table_by_pasid ON proj_pasid_table (session, pasid);

CREATE TABLE IF NOT EXISTS proj_domains (
    session  text    NOT NULL,
    id       text    NOT NULL,
    type     text    NOT NULL,
    name     text,
    mm       text,
    users    integer NOT NULL,
    asid     integer,
    PRIMARY KEY (session, id)
);

CREATE TABLE IF NOT EXISTS proj_mms (
    session   text    NOT NULL,
    id        text    NOT NULL,
    pasid     integer,
    state     text    NOT NULL,
    mm_users  integer NOT NULL,
    mm_count  integer NOT NULL,
    inferred  boolean NOT NULL,
    PRIMARY KEY (session, id)
);

CREATE TABLE IF NOT EXISTS proj_handles (
    session  text    NOT NULL,
    id       text    NOT NULL,
    device   text    NOT NULL,
    mm       text    NOT NULL,
    domain   text,
    pasid    integer NOT NULL,
    users    integer NOT NULL,
    PRIMARY KEY (session, id)
);

INSERT INTO schema_versions (version) VALUES (10) ON CONFLICT DO NOTHING;

-- The writer role maintains the read models; the reader role only reads them.
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON proj_devices, proj_pasid_table, proj_domains, proj_mms, proj_handles TO sva_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader') THEN
        GRANT SELECT ON proj_devices, proj_pasid_table, proj_domains, proj_mms, proj_handles TO sva_reader;
    END IF;
END
$grants$;
