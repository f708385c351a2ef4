using Marten;
using Weasel.Core;
using Weasel.Core.Migrations;
using Weasel.Postgresql;
using Weasel.Postgresql.Functions;

namespace Sva.EventStore;

/// <summary>
/// The log is append-only in the database: a trigger on Marten's <c>mt_events</c> refuses UPDATE, DELETE and TRUNCATE
/// for every role, and the writer role loses those privileges. A Weasel feature schema that depends on Marten's event
/// store, so Marten's own schema management creates it after <c>mt_events</c> on a fresh database (objects added through
/// <c>ExtendedSchemaObjects</c> are emitted before <c>mt_events</c> and fail there).
/// </summary>
internal sealed class AppendOnlyFeature(StoreOptions options) : FeatureSchemaBase("sva_append_only", options.Advanced.Migrator)
{
    public const string FunctionName = "sva_events_append_only";

    // Idempotent without taking a lock when everything is in place (Weasel re-applies custom objects on every diff):
    // triggers are created only when missing, the privilege is revoked only when held.
    private const string Body =
        """
        CREATE OR REPLACE FUNCTION public.sva_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            RAISE EXCEPTION 'events are append-only'
                USING ERRCODE = 'restrict_violation',
                      DETAIL = format('%s on table %s is not allowed', TG_OP, TG_TABLE_NAME);
        END
        $fn$;
        DO $triggers$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'public.mt_events'::regclass AND tgname = 'sva_events_append_only') THEN
                CREATE TRIGGER sva_events_append_only BEFORE UPDATE OR DELETE ON public.mt_events
                    FOR EACH ROW EXECUTE FUNCTION public.sva_events_append_only();
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'public.mt_events'::regclass AND tgname = 'sva_events_no_truncate') THEN
                CREATE TRIGGER sva_events_no_truncate BEFORE TRUNCATE ON public.mt_events
                    FOR EACH STATEMENT EXECUTE FUNCTION public.sva_events_append_only();
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sva_writer')
               AND (has_table_privilege('sva_writer', 'public.mt_events', 'UPDATE')
                    OR has_table_privilege('sva_writer', 'public.mt_events', 'DELETE')
                    OR has_table_privilege('sva_writer', 'public.mt_events', 'TRUNCATE')) THEN
                REVOKE UPDATE, DELETE, TRUNCATE ON public.mt_events FROM sva_writer;
            END IF;
        END
        $triggers$;
        """;

    public override Type StorageType => typeof(AppendOnlyFeature);

    public override IEnumerable<Type> DependentTypes()
    {
        yield return typeof(Marten.Events.EventGraph);
    }

#pragma warning disable CS0618 // the two-argument PostgresqlObjectName is what Weasel 9.50's Function takes here
    protected override IEnumerable<ISchemaObject> schemaObjects()
    {
        yield return new Function(new PostgresqlObjectName("public", FunctionName), Body);
    }
#pragma warning restore CS0618
}
