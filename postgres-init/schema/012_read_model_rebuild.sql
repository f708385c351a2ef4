-- Rebuild of the inline read model into fresh tables, then a swap (sva projections rebuild).
-- sva_read_model_prepare(): empty shadow tables proj_*__rebuild shaped like the live ones.
-- sva_read_model_swap(): in the caller's transaction (which holds the store_position row lock, so no
-- append runs meanwhile) the shadow tables replace the live ones, grants included.
CREATE OR REPLACE FUNCTION sva_read_model_prepare() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['proj_devices', 'proj_pasid_table', 'proj_domains', 'proj_mms', 'proj_handles'] LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', t || '__rebuild');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL)', t || '__rebuild', t);
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION sva_read_model_swap() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['proj_devices', 'proj_pasid_table', 'proj_domains', 'proj_mms', 'proj_handles'] LOOP
        EXECUTE format('DROP TABLE %I', t);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t || '__rebuild', t);
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer') THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO sva_writer', t);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader') THEN
            EXECUTE format('GRANT SELECT ON %I TO sva_reader', t);
        END IF;
    END LOOP;
END
$fn$;

INSERT INTO schema_versions (version) VALUES (12) ON CONFLICT DO NOTHING;
