"""One schedule: the README's crontab and Celery beat both come from operations.schedule."""

from io import StringIO
from pathlib import Path

from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command

from marsha_runner.operations.schedule import SCHEDULE
from marsha_runner.operations.tasks import operations_command_run

README = Path(settings.BASE_DIR) / "README.md"


def test_the_readme_shows_the_crontab_the_command_prints():
    out = StringIO()
    call_command("operations_crontab", stdout=out)
    printed = out.getvalue().strip()
    readme = README.read_text()
    block = readme.split("```crontab\n", 1)[1].split("\n```", 1)[0]
    assert block == printed


def test_celery_beat_runs_the_same_commands_at_the_same_times():
    beat = settings.CELERY_BEAT_SCHEDULE
    assert set(beat) == {command for command, _when, _why in SCHEDULE}
    for command, when, _why in SCHEDULE:
        minute, hour, day_of_month, month, day_of_week = when.split()
        assert beat[command]["schedule"] == crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
        assert beat[command]["args"] == (command,)
        assert beat[command]["task"] == operations_command_run.name


def test_every_scheduled_command_exists_and_takes_json(db, settings):
    settings.HEALTH_MIN_RUNNERS_ONLINE = 0
    for command, _when, _why in SCHEDULE:
        assert operations_command_run.run(command) == 0, command
