"""The active jobs by state and type, by an index-only scan (issue 20).

The health panel, ``health_report`` and every ``/metrics`` scrape count the jobs that are
not finished (pending, waiting for their parent, processing, completing) by state and type.
Finished jobs are most of a table of millions; this partial index holds only the others, so
the count reads a few pages whatever the history. Built CONCURRENTLY on PostgreSQL (no write
lock on a large table), hence a non-atomic migration; the same SQL on SQLite.
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEX = "runners_runnerjob_active_state_type"
# RunnerJobState PENDING, PROCESSING, WAITING_FOR_PARENT_JOB, COMPLETING: selectors.ACTIVE_STATES
# (a query filtering ``state IN`` those, in any order, is proven to match by the planner).
PREDICATE = "state IN (1, 2, 5, 9)"


def create(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON {TABLE} (state, type) "
        f"WHERE {PREDICATE}"
    )


def drop(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runners", "0007_runnerjob_pending_priority_created")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
