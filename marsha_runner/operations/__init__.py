"""Operations: what staff run from cron (watchdog, cleanups, pruning, health) and transcription.

Services and selectors here; the commands, the Celery beat schedule and the admin are shells.
Nothing here imports the runner library: job-level work goes through ``marsha_runner.runners``.
"""
