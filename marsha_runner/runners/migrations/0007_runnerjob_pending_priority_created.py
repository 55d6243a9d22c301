"""Pending jobs by priority class, oldest first (issue 18): the dispatch order, indexed.

``selectors.runner_jobs_available`` orders pending jobs by ``(priority, createdAt, id)``: a
new upload's class before staff work, oldest first within a class. This partial index on
pending jobs serves that order (the first rows of an index scan, whatever the number of
pending staff jobs) and replaces 0001's index on priority alone. Built CONCURRENTLY on
PostgreSQL (no write lock on the jobs table), hence a non-atomic migration.
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEX = "runners_runnerjob_pending_order"
OLD_INDEX = "runners_runnerjob_pending_priority"


def _concurrently(schema_editor) -> str:
    return "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""


def create(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(
        f'CREATE INDEX {how}IF NOT EXISTS {INDEX} ON {TABLE} (priority, "createdAt", id) '
        "WHERE state = 1"
    )
    schema_editor.execute(f"DROP INDEX {how}IF EXISTS {OLD_INDEX}")


def drop(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX {how}IF NOT EXISTS {OLD_INDEX} ON {TABLE} (priority) WHERE state = 1"
    )
    schema_editor.execute(f"DROP INDEX {how}IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runners", "0006_drop_jsonb_video_uuid_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
