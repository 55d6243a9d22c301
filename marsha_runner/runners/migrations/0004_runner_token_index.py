"""An index on the library's runner token (issue 6): every runner call finds its runner by it.

The library declares ``Runner.runnerToken`` without an index, so each ``jobs/request`` scanned
the runner table. The table is the library's, so the index comes from our app (like 0001).
"""

from django.db import migrations

TABLE = "django_peertube_runner_connector_runner"
INDEX = "runners_runner_token"


class Migration(migrations.Migration):
    dependencies = [
        ("runners", "0003_runnerjob_admin_indexes"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f'CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} ("runnerToken")',
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
