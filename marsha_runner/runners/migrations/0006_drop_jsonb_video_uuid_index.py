"""Drop 0003's jsonb index on ``privatePayload -> 'videoUUID'``: 0005's text index serves
every lookup of a video's jobs (``selectors.JobVideoUUID``), one index is enough."""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEX = "runners_runnerjob_video_uuid"


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {TABLE} "
            "((\"privatePayload\" -> 'videoUUID'))"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("runners", "0005_runnerjob_video_uuid_text_index")]

    operations = [migrations.RunPython(drop, create, elidable=False)]
