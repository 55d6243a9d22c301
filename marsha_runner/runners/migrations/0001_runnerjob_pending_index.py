"""A partial index on the library's runner job table: pending jobs by priority (docs/design.md#dispatch).

``jobs/request`` filters ``state = 1`` ordered by priority; without it PostgreSQL scans every
finished job on each call. The table is the library's, so the index comes from our app.
Plain SQL valid on SQLite and PostgreSQL (both support partial indexes).
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runnerjob"
INDEX = "runners_runnerjob_pending_priority"


class Migration(migrations.Migration):
    dependencies = [
        ("django_peertube_runner_connector", "0004_video_language_video_transcriptfilename_and_more"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (priority) WHERE state = 1",
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
