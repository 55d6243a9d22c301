"""The operations schedule: one table for the README's crontab and for Celery beat.

``manage.py operations_crontab`` prints the crontab from it (the README shows that output, a
test checks they agree); ``settings.CELERY_BEAT_SCHEDULE`` is built from it too. No Django
import here: the settings module reads it.
"""

from celery.schedules import crontab

# (command, crontab fields "minute hour day-of-month month day-of-week", why)
SCHEDULE = (
    ("runners_watchdog", "* * * * *", "stalled jobs back to pending, lost launches relaunched"),
    ("health_report", "*/5 * * * *", "exit 2 (cron mail, monitors) when a threshold is crossed"),
    ("cleanup_sources", "17 * * * *", "uploaded sources of videos ready or in error"),
    ("purge_stale_uploads", "42 3 * * *", "uploads never ended, temp objects of no video"),
    ("prune_runner_jobs", "12 4 * * *", "finished runner jobs older than the retention"),
)

LOG_DIR = "/var/log/marsha_runner"


def crontab_lines(
    *, manage: str = "/app/manage.py", python: str = "python", log_dir: str = LOG_DIR
) -> list[str]:
    """The crontab of the README. Each run appends its ``--json`` summary to a log; only
    stderr reaches cron's mail: the "Needs attention" line of a run that exits 2."""
    lines = []
    for command, when, why in SCHEDULE:
        lines.append(f"# {command}: {why}")
        lines.append(f"{when} {python} {manage} {command} --json >> {log_dir}/{command}.jsonl")
    return lines


def beat_schedule() -> dict:
    """``CELERY_BEAT_SCHEDULE`` with the same commands at the same times."""
    schedule = {}
    for command, when, _why in SCHEDULE:
        minute, hour, day_of_month, month_of_year, day_of_week = when.split()
        schedule[command] = {
            "task": "marsha_runner.operations.tasks.operations_command_run",
            "schedule": crontab(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
            ),
            "args": (command,),
        }
    return schedule
