"""``manage.py dev_runner`` (`make runner`): the project's runner client serving a local server.

A development and test tool; production uses PeerTube's ``peertube-runner``.
"""

import json
import logging
import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Run the development runner against a local server with the seeded dev runner token "
        "until stopped (Ctrl-C or SIGTERM), logging each job it takes."
    )
    requires_system_checks = []  # it talks HTTP to a server; this project's settings are moot

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            help="The server (default: RUNNERS_CALLBACK_DOMAIN, which follows PORT).",
        )
        parser.add_argument(
            "--runner-token", help="Runner token (default: PEERTUBE_RUNNER_TOKEN, seeded)."
        )
        parser.add_argument("--workdir", help="Where jobs are downloaded (default: a temp dir).")
        parser.add_argument(
            "--poll",
            type=float,
            default=30,
            help="Seconds between asks when no ping comes (default 30).",
        )
        parser.add_argument(
            "--whisper-model",
            help="Whisper model of transcription jobs: a CTranslate2 folder or a faster-whisper "
            "name (default: DEV_RUNNER_WHISPER_MODEL, else the bundled tiny.en).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print a JSON summary on stdout when stopped."
        )

    def handle(self, *args, **options):
        try:
            from marsha_runner.devrunner.calls import RunnerProtocolError
            from marsha_runner.devrunner.client import TRANSCRIPTION_JOB, RunnerClient
            from marsha_runner.devrunner.serve import devrunner_serve
        except ImportError as err:
            raise CommandError(
                f"The dev runner needs the dev dependencies (make install): {err}"
            ) from None

        url = options["url"] or settings.RUNNERS_CALLBACK_DOMAIN
        token = options["runner_token"] or settings.PEERTUBE_RUNNER_TOKEN
        if not token:
            raise CommandError(
                "No runner token: give --runner-token or set PEERTUBE_RUNNER_TOKEN."
            )
        log = logging.getLogger("marsha_runner.devrunner")
        log.setLevel(logging.INFO)

        stop = threading.Event()

        def on_signal(signum, frame):
            if stop.is_set():  # a second signal: do not wait for the jobs
                log.warning("stopped (%s) without finishing the jobs", signal.Signals(signum).name)
                os._exit(128 + signum)
            log.info("stopping (%s) after the jobs in progress", signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        model = options["whisper_model"] or settings.DEV_RUNNER_WHISPER_MODEL or None
        client = RunnerClient(url, token, workdir=options["workdir"], whisper_model=model)
        log.info("dev runner for %s, jobs %s (Ctrl-C stops it)", url, ", ".join(client.job_types))
        if TRANSCRIPTION_JOB not in client.job_types:
            log.warning("no transcription: faster-whisper or its model is missing (make install)")
        try:
            jobs_done = devrunner_serve(client=client, stop=stop, poll=options["poll"])
        except RunnerProtocolError as err:
            raise CommandError(
                f"{url} refused the runner: {err}. Is the server seeded (make run) and the "
                "token right?"
            ) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopped after %d job(s)", jobs_done)
        if options["json"]:
            self.stdout.write(json.dumps({"url": url, "jobs_done": jobs_done}))
