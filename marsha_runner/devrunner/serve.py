"""The dev runner's loop: the project's runner client working until told to stop.

A development and test tool (`make runner`, ``manage.py dev_runner``); production runs
PeerTube's own ``peertube-runner``. Like that runner it asks for jobs when it starts, after each
job and on each ``available-jobs`` ping; it also asks every ``poll`` seconds and reconnects its
socket when the server went away, so it survives a restarted ``make run``.
"""

from __future__ import annotations

import logging
import threading
import time

import requests
from socketio.exceptions import SocketIOError

from marsha_runner.devrunner.client import RunnerClient, RunnerProtocolError

logger = logging.getLogger(__name__)


def devrunner_describe_job(job: dict) -> str:
    """``<uuid> <type> <resolution>p`` for the logs (never the job token)."""
    output = (job.get("payload") or {}).get("output") or {}
    resolution = f" {output['resolution']}p" if output.get("resolution") else ""
    return f"{job['uuid']} {job.get('type', '?')}{resolution}"


def devrunner_take_jobs(*, client: RunnerClient, stop: threading.Event) -> int:
    """Take and process every job offered, one at a time; how many were done."""
    done = 0
    for available in client.request_jobs():
        if stop.is_set():
            break
        job = client.accept(available["uuid"])
        if job is None:
            continue  # another runner won it
        what = devrunner_describe_job(job)
        logger.info("took job %s", what)
        started = time.monotonic()
        try:
            succeeded = client.process(job)  # a failure is reported to the server by it
        except (RunnerProtocolError, RuntimeError, OSError, requests.RequestException) as err:
            logger.error("job %s failed: %s", what, err)
            try:
                client.error(job, f"dev runner: {err}"[:1000])
            except (RunnerProtocolError, requests.RequestException) as report_err:
                logger.error("could not report the failure of %s: %s", what, report_err)
            continue
        if not succeeded:
            logger.error("job %s failed (reported): %s", what, client.failed[-1][1][:300])
            continue
        done += 1
        logger.info("job %s done in %.1fs", what, time.monotonic() - started)
    return done


def devrunner_serve(
    *, client: RunnerClient, stop: threading.Event, poll: float = 30, retry: float = 2
) -> int:
    """Work until ``stop`` is set (a job in progress is finished first); jobs done. A server
    that does not answer is waited for; one that refuses the runner raises RunnerProtocolError."""
    total = 0
    last_ask = 0.0
    while not stop.is_set():
        try:
            if not client.connected:
                client.request_jobs()  # refuses an unknown token with a clear status
                client.connect()
                logger.info("connected to %s, waiting for jobs", client.base_url)
                last_ask = 0.0
            if client.wait_ping(0) or time.monotonic() - last_ask >= poll:
                last_ask = time.monotonic()
                while not stop.is_set():
                    done = devrunner_take_jobs(client=client, stop=stop)
                    total += done
                    if not done:
                        break
            stop.wait(0.2)
        except (requests.ConnectionError, requests.Timeout, SocketIOError) as err:
            logger.warning("%s does not answer (%s); retrying in %ss", client.base_url, err, retry)
            client.disconnect()
            stop.wait(retry)
    client.disconnect()
    return total
