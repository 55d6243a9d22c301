"""Readiness: can this process serve? The database, Redis and the video storage, each
reached with a short deadline, all at once.

A check that does not answer within ``READINESS_TIMEOUT`` seconds fails (``timeout``). Its
thread is left to finish on its own, and no second check of that dependency starts while it
runs (it fails at once, ``still waiting``): a hung dependency cannot pile up threads, one
probe after another. What failed is named by the exception's class only: a message may hold
a host, a URL or a credential.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from django.conf import settings
from django.db import connections

from marsha_runner.storage import video_storage

PROBE_KEY = "readyz/probe"
_executor = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readyz")
_running: dict = {}
_lock = threading.Lock()


def _database():
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # a thread of ours: hand the connection back


def _redis():
    timeout = settings.READINESS_TIMEOUT
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def _storage():
    # Any answer from the store will do (the key need not exist): it is reachable and it
    # accepts our credentials (a refused signature raises).
    video_storage().exists(PROBE_KEY)


def readiness_checks() -> dict:
    """The checks that apply to this deployment: Redis only where ``REDIS_URL`` is set."""
    checks = {"database": _database, "storage": _storage}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    return checks


def readiness(*, checks: dict | None = None) -> dict:
    """{name: {"ok": bool, "error": class name, "ms": duration}} for each check."""
    checks = readiness_checks() if checks is None else checks
    deadline = time.monotonic() + settings.READINESS_TIMEOUT
    futures, results = {}, {}
    for name, check in checks.items():
        with _lock:
            if name in _running and not _running[name].done():
                results[name] = {"ok": False, "error": "still waiting for the previous check"}
                continue
            _running[name] = futures[name] = _executor.submit(_timed, check)
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(deadline - time.monotonic(), 0))
        except FutureTimeout:
            results[name] = {"ok": False, "error": "timeout"}
    return results


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        check()
    except Exception as err:  # noqa: BLE001 - any failure means "not ready", named
        return {"ok": False, "error": type(err).__name__, "ms": _ms(started)}
    return {"ok": True, "ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
