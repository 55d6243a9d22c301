"""The dev runner's loop: the project's runner client working until told to stop.

A development and test tool (`make runner`, ``manage.py dev_runner``); production runs
PeerTube's own ``peertube-runner``. Like that runner it runs up to ``client.concurrency`` jobs at
once and picks them by its rule (``RunnerClient.check_available_jobs``): at start, after each
job, on each ``available-jobs`` ping and 2.5 s after a check that took a job; it also asks every
``poll`` seconds and reconnects its socket when the server went away, so it survives a
restarted ``make run``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from socketio.exceptions import SocketIOError

from marsha_runner.devrunner.calls import RunnerProtocolError
from marsha_runner.devrunner.client import RECHECK_AFTER_ACCEPT, RunnerClient

logger = logging.getLogger(__name__)


def devrunner_describe_job(job: dict) -> str:
    """``<uuid> <type> <resolution>p`` for the logs (never the job token)."""
    output = (job.get("payload") or {}).get("output") or {}
    resolution = f" {output['resolution']}p" if output.get("resolution") else ""
    return f"{job['uuid']} {job.get('type', '?')}{resolution}"


def devrunner_process(*, client: RunnerClient, job: dict) -> bool:
    """One job, logged from start to end; True when it succeeded (a failure is reported to
    the server by the client itself)."""
    what = devrunner_describe_job(job)
    logger.info("took job %s", what)
    started = time.monotonic()
    try:
        succeeded = client.process(job)
    except (RunnerProtocolError, requests.RequestException) as err:
        logger.error("job %s failed and its failure could not be reported: %s", what, err)
        return False
    if succeeded:
        logger.info("job %s done in %.1fs", what, time.monotonic() - started)
    else:
        logger.error("job %s failed (reported): %s", what, client.failed[-1][1][:300])
    return succeeded


def devrunner_serve(
    *, client: RunnerClient, stop: threading.Event, poll: float = 30, retry: float = 2
) -> int:
    """Work until ``stop`` is set (jobs in progress are finished first); jobs done. A server
    that does not answer is waited for; one that refuses the runner raises RunnerProtocolError."""
    total = 0
    last_ask = 0.0
    recheck_at = None
    in_flight: dict = {}
    pool = ThreadPoolExecutor(client.concurrency, thread_name_prefix="dev-runner-job")

    def process(job):
        return devrunner_process(client=client, job=job)

    try:
        while not stop.is_set():
            try:
                if not client.connected:
                    client.request_jobs()  # refuses an unknown token with a clear status
                    client.connect()
                    logger.info("connected to %s, waiting for jobs", client.base_url)
                    last_ask = 0.0
                finished = [future for future in in_flight if future.done()]
                for future in finished:
                    in_flight.pop(future)
                    total += future.result()
                pinged = client.wait_ping(0)
                now = time.monotonic()
                due = recheck_at is not None and now >= recheck_at
                if pinged or finished or due or now - last_ask >= poll:
                    last_ask, recheck_at = now, None
                    if client.check_available_jobs(pool, in_flight, process=process):
                        recheck_at = time.monotonic() + RECHECK_AFTER_ACCEPT
                stop.wait(0.05)
            except (requests.ConnectionError, requests.Timeout, SocketIOError) as err:
                logger.warning(
                    "%s does not answer (%s); retrying in %ss", client.base_url, err, retry
                )
                client.disconnect()
                stop.wait(retry)
        if in_flight:
            logger.info("finishing %d job(s) in progress", len(in_flight))
        total += sum(future.result() for future in in_flight)
    finally:
        pool.shutdown(wait=True)
        client.disconnect()
    return total
