"""Celery beat's shell around the cron commands (for deployments without cron)."""

import logging

from celery import shared_task
from django.core.management import call_command
from django.core.management.base import CommandError

from .schedule import SCHEDULE

COMMANDS = {command for command, _when, _why in SCHEDULE}
logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def operations_command_run(command: str) -> int:
    """Run one scheduled command with ``--json``; returns its exit code (2: look at it)."""
    if command not in COMMANDS:
        raise ValueError(f"{command!r} is not a scheduled operations command.")
    try:
        call_command(command, "--json")
    except CommandError as err:
        code = err.returncode
    else:
        code = 0
    logger.info("Operations command %s exited %s.", command, code)
    return code
