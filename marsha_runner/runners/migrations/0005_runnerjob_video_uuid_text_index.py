"""The jobs of one transcoded video, by index (issue 6): every completion looks them up.

``selectors.JobVideoUUID`` reads ``privatePayload.videoUUID`` as text with exactly the
expressions below; without the index each completion scans the whole (ever-growing) jobs
table. Built CONCURRENTLY on PostgreSQL (no write lock on a table of millions of jobs), hence
a non-atomic migration; SQLite (the embedded default) indexes the same expression its way.
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEX = "runners_runnerjob_video_uuid_text"
EXPRESSIONS = {
    "postgresql": "((\"privatePayload\" ->> 'videoUUID'))",
    "sqlite": "(json_extract(\"privatePayload\", '$.videoUUID'))",
}


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    expression = EXPRESSIONS.get(vendor)
    if expression is None:
        return
    concurrently = "CONCURRENTLY " if vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} ON {TABLE} {expression}"
    )


def drop(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runners", "0004_runner_token_index")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
