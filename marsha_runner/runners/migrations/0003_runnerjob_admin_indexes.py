"""Indexes on the library's runner job table behind the staff admin's lists (issue 10).

The default ordering (newest first), each filter with that ordering, the per-runner counts
of the last 24 h, and the job → video link (``privatePayload.videoUUID``, docs/design.md#unindexed-job-lookups).
The table is the library's, so the indexes come from our app; the SQL is valid on SQLite
and PostgreSQL except the JSON expression (PostgreSQL only).
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEXES = {
    "runners_runnerjob_created": '("createdAt" DESC)',
    "runners_runnerjob_state_created": '(state, "createdAt" DESC)',
    "runners_runnerjob_type_created": '(type, "createdAt" DESC)',
    "runners_runnerjob_runner_created": '(runner_id, "createdAt" DESC)',
    "runners_runnerjob_runner_state_finished": '(runner_id, state, "finishedAt")',
    "runners_runnerjob_state_finished": '(state, "finishedAt")',
}
VIDEO_UUID_INDEX = "runners_runnerjob_video_uuid"
# (Dropped again by 0006: 0005's text index serves these lookups.)
# The expression Django's ``privatePayload__videoUUID=…`` compiles to on PostgreSQL (the
# lookup of ``selectors.runner_jobs_of_video``); SQLite (the embedded default) goes without.
VIDEO_UUID_EXPRESSION = {"postgresql": "((\"privatePayload\" -> 'videoUUID'))"}


def create(apps, schema_editor):
    for name, columns in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} {columns}")
    expression = VIDEO_UUID_EXPRESSION.get(schema_editor.connection.vendor)
    if expression:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {VIDEO_UUID_INDEX} ON {TABLE} {expression}"
        )


def drop(apps, schema_editor):
    for name in [*INDEXES, VIDEO_UUID_INDEX]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("runners", "0002_staff_proxies")]

    operations = [migrations.RunPython(create, drop)]
