namespace Sva.EventStore;

// Schema: Marten applies it, one process at a time; the grants of postgres-init's roles.
public sealed partial class MartenEventStore
{
    // Grants of postgres-init's roles on what Marten created; only where missing (no lock taken when all is in place).
    private const string GrantRoles =
        """
        DO $grants$
        DECLARE t regclass;
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader') THEN
                IF NOT has_schema_privilege('sva_reader', 'public', 'USAGE') THEN GRANT USAGE ON SCHEMA public TO sva_reader; END IF;
                FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
                           AND NOT has_table_privilege('sva_reader', c.oid, 'SELECT') LOOP
                    EXECUTE format('GRANT SELECT ON %s TO sva_reader', t);
                END LOOP;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer') THEN
                IF NOT has_schema_privilege('sva_writer', 'public', 'USAGE') THEN GRANT USAGE ON SCHEMA public TO sva_writer; END IF;
                FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'mt_events'
                           AND NOT has_table_privilege('sva_writer', c.oid, 'INSERT') LOOP
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO sva_writer', t);
                END LOOP;
                IF NOT has_table_privilege('sva_writer', 'public.mt_events', 'INSERT') THEN
                    GRANT SELECT, INSERT ON public.mt_events TO sva_writer;
                END IF;
                FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public'
                           AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege('sva_writer', c.oid, 'USAGE') ELSE false END LOOP
                    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO sva_writer', t);
                END LOOP;
            END IF;
        END
        $grants$;
        """;

    private static async Task EnsureSchemaAsync(DocumentStore migrator, NpgsqlDataSource dataSource,
        IReadOnlyList<IDocumentProjection> projections, CancellationToken ct)
    {
        // Marten compares the configured schema with the database and applies the difference; one process at a time.
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using (var l = new NpgsqlCommand("SELECT pg_advisory_lock($1)", conn) { Parameters = { Bigint(SchemaLockKey) } })
            await l.ExecuteNonQueryAsync(ct);
        try
        {
            // A projection that ran inline before (its document table exists in the old shape, without the duplicated
            // "session" column this version adds, and Marten has no checkpoint of it) was current at every commit: its
            // checkpoint starts at today's head, so the daemon neither re-projects nor skips anything. A database this
            // version created has the column: there the checkpoint is only ever the daemon's.
            var formerlyInline = new List<string>();
            foreach (var p in projections.Where(p => p.FormerlyInline))
            {
                await using var c = new NpgsqlCommand(
                    """
                    SELECT to_regclass('public.' || $1) IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'session')
                    """, conn) { Parameters = { Text("mt_doc_" + p.DocumentTypes[0].Name.ToLowerInvariant()) } };
                if (await c.ExecuteScalarAsync(ct) is true) formerlyInline.Add(p.Name);
            }
            await migrator.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
            foreach (var name in formerlyInline)
            {
                await using var c = new NpgsqlCommand(
                    """
                    INSERT INTO public.mt_event_progression (name, last_seq_id)
                    SELECT $1, coalesce((SELECT max(seq_id) FROM public.mt_events), 0)
                    WHERE NOT EXISTS (SELECT 1 FROM public.mt_event_progression WHERE name LIKE $2)
                    """, conn) { Parameters = { Text(name + ":All"), Text(name + ":%") } };
                await c.ExecuteNonQueryAsync(ct);
            }
            // The roles of postgres-init (when this cluster has them) on whatever Marten just created in this database.
            await using var g = new NpgsqlCommand(GrantRoles, conn);
            await g.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            await using var u = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", conn) { Parameters = { Bigint(SchemaLockKey) } };
            await u.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }
}
