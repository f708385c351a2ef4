-- 001_store.sql: the event store (sessions, events, global position counter, idempotency,
-- snapshots, projection checkpoints), append-only enforcement and roles.
--
-- Idempotent: safe to run any number of times, also while the store is in use (no table is
-- rewritten or locked exclusively on a re-run). Plain SQL only (no psql meta-commands): it is
-- run both by postgres-init/pg-up.sh (psql -1) and by PgEventStore.EnsureSchemaAsync (embedded
-- resource), each time in one transaction holding pg_advisory_xact_lock(7360001).
-- Must run as a superuser (or a role with CREATEROLE that may own the tables) for the role part;
-- without role rights that part is skipped with a NOTICE.

SET LOCAL client_min_messages = warning;

CREATE TABLE IF NOT EXISTS schema_versions (
    version    int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- version = the session's last seq; last_hash = hash of that event (NULL while version = 0).
CREATE TABLE IF NOT EXISTS sessions (
    id         text PRIMARY KEY,
    kernel     text NOT NULL,
    source     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    version    bigint NOT NULL DEFAULT 0,
    last_hash  bytea
);

-- position: the global order, gap-free in commit order (taken from store_position under its row lock).
-- hash: SHA-256 chain per session, see PgEventStore (EventHash.cs) for the exact byte layout.
CREATE TABLE IF NOT EXISTS events (
    position    bigint PRIMARY KEY,
    session     text NOT NULL REFERENCES sessions (id),
    seq         bigint NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    metadata    jsonb NOT NULL DEFAULT '{}',
    command_id  uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    hash        bytea NOT NULL,
    UNIQUE (session, seq)
);

-- The single counter row: last = the last position handed out (and committed, as it is
-- updated in the appending transaction).
CREATE TABLE IF NOT EXISTS store_position (
    id   int PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL
);
INSERT INTO store_position (id, last) VALUES (1, 0) ON CONFLICT DO NOTHING;

-- Idempotency: one row per (session, command id) that appended.
CREATE TABLE IF NOT EXISTS commands (
    session    text,
    command_id uuid,
    first_seq  bigint,
    last_seq   bigint,
    PRIMARY KEY (session, command_id)
);

-- A cache: may be deleted at any time; rebuilt from events.
CREATE TABLE IF NOT EXISTS snapshots (
    session    text,
    seq        bigint,
    data       jsonb NOT NULL,
    created_at timestamptz DEFAULT now(),
    PRIMARY KEY (session, seq)
);

CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz
);

-- ---- append-only enforcement ----
CREATE OR REPLACE FUNCTION sva_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'events are append-only'
        USING ERRCODE = 'restrict_violation',
              DETAIL = format('%s on table %s is not allowed', TG_OP, TG_TABLE_NAME);
END
$fn$;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'public.events'::regclass AND tgname = 'events_append_only') THEN
        CREATE TRIGGER events_append_only
            BEFORE UPDATE OR DELETE ON public.events
            FOR EACH ROW EXECUTE FUNCTION sva_events_append_only();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'public.events'::regclass AND tgname = 'events_no_truncate') THEN
        CREATE TRIGGER events_no_truncate
            BEFORE TRUNCATE ON public.events
            FOR EACH STATEMENT EXECUTE FUNCTION sva_events_append_only();
    END IF;
END
$do$;

-- ---- roles ----
-- sva_owner owns the tables; sva_writer appends and maintains read models; sva_reader reads.
-- LOGIN without password: the local cluster is throwaway and trusts loopback connections.
DO $do$
DECLARE
    r text;
    t text;
    can_roles boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO can_roles FROM pg_roles WHERE rolname = current_user;
    IF NOT can_roles THEN
        RAISE NOTICE 'sva schema: % may not create roles; skipping roles and grants', current_user;
        RETURN;
    END IF;

    FOREACH r IN ARRAY ARRAY['sva_owner', 'sva_writer', 'sva_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently (from another database of the cluster)
            END;
        END IF;
    END LOOP;

    -- Ownership (only when it differs: ALTER ... OWNER locks the table).
    FOREACH t IN ARRAY ARRAY['schema_versions', 'sessions', 'events', 'store_position', 'commands',
                             'snapshots', 'projection_checkpoints'] LOOP
        IF (SELECT relowner FROM pg_class WHERE oid = format('public.%I', t)::regclass)
           <> (SELECT oid FROM pg_roles WHERE rolname = 'sva_owner') THEN
            EXECUTE format('ALTER TABLE public.%I OWNER TO sva_owner', t);
        END IF;
    END LOOP;
    IF (SELECT proowner FROM pg_proc WHERE oid = 'public.sva_events_append_only()'::regprocedure)
       <> (SELECT oid FROM pg_roles WHERE rolname = 'sva_owner') THEN
        ALTER FUNCTION public.sva_events_append_only() OWNER TO sva_owner;
    END IF;

    GRANT USAGE ON SCHEMA public TO sva_writer, sva_reader;

    -- writer: events are insert-only; everything else of the store is read/insert/update.
    GRANT SELECT, INSERT ON public.events TO sva_writer;
    REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.events FROM sva_writer;
    GRANT SELECT, INSERT, UPDATE ON public.sessions, public.commands, public.store_position,
        public.snapshots, public.projection_checkpoints TO sva_writer;
    GRANT SELECT ON public.schema_versions TO sva_writer;

    -- reader: SELECT on everything in public (now and, below, later).
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO sva_reader;

    -- Tables created later (projection read models in 010_* and up, created by the role that runs
    -- the schema files, or by sva_owner): writer may read and maintain them, reader may read them.
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public
                    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sva_writer', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public
                    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO sva_writer', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public
                    GRANT SELECT ON TABLES TO sva_reader', current_user);
    ALTER DEFAULT PRIVILEGES FOR ROLE sva_owner IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sva_writer;
    ALTER DEFAULT PRIVILEGES FOR ROLE sva_owner IN SCHEMA public
        GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO sva_writer;
    ALTER DEFAULT PRIVILEGES FOR ROLE sva_owner IN SCHEMA public
        GRANT SELECT ON TABLES TO sva_reader;
END
$do$;

INSERT INTO schema_versions (version) VALUES (1) ON CONFLICT DO NOTHING;
