-- 000_roles.sql: the three roles of Sva.EventSourced and their default privileges. Nothing else:
-- the tables (mt_events, mt_streams, mt_doc_*) are created and migrated by Marten's own schema
-- management when `sva` starts (as the owner), together with the append-only trigger on mt_events
-- (EventStore/AppendOnlyFeature.cs). Weasel has no object for roles, so they stay here.
--
--   sva_owner   a role to hand ownership to in a shared database (owns nothing by default)
--   sva_writer  appends events and maintains documents (read models, snapshots, import progress)
--   sva_reader  reads; every query verb connects as it
--
-- Idempotent; run by postgres-init/pg-up.sh (psql -1) as the cluster's superuser. LOGIN without a
-- password: the local cluster is throwaway and trusts loopback connections. On a server you manage,
-- run it once as a role with CREATEROLE (see README, "Pointing sva at an existing PostgreSQL").
SET LOCAL client_min_messages = warning;

DO $do$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['sva_owner', 'sva_writer', 'sva_reader'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently from another database of the cluster
            END;
        END IF;
    END LOOP;

    GRANT USAGE ON SCHEMA public TO sva_writer, sva_reader;
    -- Whatever the schema owner (the role that runs `sva` first: Marten creates its tables then)
    -- creates later: the writer may read and write it, the reader may read it. The append-only
    -- feature revokes UPDATE/DELETE/TRUNCATE on mt_events from the writer after Marten creates it.
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO sva_writer', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO sva_writer', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON TABLES TO sva_reader', current_user);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT ON SEQUENCES TO sva_reader', current_user);
    -- Tables that exist already (a database whose Marten schema was made before the roles).
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO sva_reader;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sva_writer;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO sva_writer;
    GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO sva_reader;
    IF to_regclass('public.mt_events') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON public.mt_events FROM sva_writer;
    END IF;
END
$do$;
