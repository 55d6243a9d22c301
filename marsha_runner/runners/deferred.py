"""Completions deferred by an outage: the runner's work is kept, never lost, never counted.

When the storage or the database does not answer while a runner's result is being stored, the
job stays ``completing`` (not errored: the runner did its work, and failures count only what
runners fail) and the result files wait in ``RUNNERS_COMPLETION_SPOOL`` (one folder per job).
The runner is answered 204: its work is taken. The completion is then applied once storage
answers again, with backoff, by the process that took the result (a thread) or by
runners_watchdog, whichever comes first: each entry is locked (``flock``) while one of them
tries it, and the job row says whether it was already done.

Layout: ``<spool>/<job uuid>/meta.json`` (fields, attempts, next attempt) and one file per
uploaded field. An entry is written beside its final name and renamed into place, so a reader
never sees half of one.
"""

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import close_old_connections, connection
from django_peertube_runner_connector.models import RunnerJob, RunnerJobState

from marsha_runner.storage.outages import is_outage, outage_describe

from .job_handlers import runner_job_handler

logger = logging.getLogger(__name__)

META = "meta.json"
LOCK = ".lock"
COMPLETED = "completed"
DEFERRED = "deferred"
BUSY = "busy"
GONE = "gone"


def _spool() -> Path:
    return Path(settings.RUNNERS_COMPLETION_SPOOL)


def _entry(job_uuid) -> Path:
    return _spool() / str(job_uuid)


def _delay(attempts: int) -> float:
    delays = list(settings.RUNNERS_COMPLETION_RETRY_DELAYS) or [30]
    return float(delays[min(attempts, len(delays) - 1)])


def _meta_write(entry: Path, meta: dict) -> None:
    temporary = entry / f".{META}.tmp"
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, entry / META)


def completion_defer(*, job: RunnerJob, result: dict, error: BaseException) -> None:
    """Keep ``result`` (the success payload: uploaded files and plain fields) until the
    completion of ``job`` can be applied; the job stays ``completing``."""
    spool = _spool()
    spool.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=spool, prefix=f".{job.uuid}-"))
    files, fields = {}, {}
    for name, value in result.items():
        if hasattr(value, "chunks"):
            value.seek(0)
            with open(staging / name, "wb") as out:
                for chunk in value.chunks():
                    out.write(chunk)
            files[name] = {"name": os.path.basename(value.name or name), "size": value.size}
        else:
            fields[name] = value
    now = time.time()
    meta = {
        "job": str(job.uuid),
        "files": files,
        "fields": fields,
        "attempts": 0,
        "since": now,
        "next_attempt": now + _delay(0),
        "last_error": outage_describe(error),
    }
    _meta_write(staging, meta)
    entry = _entry(job.uuid)
    if entry.exists():  # a result taken again for the same job: the newest wins
        shutil.rmtree(entry, ignore_errors=True)
    os.replace(staging, entry)
    logger.warning(
        "Completion of runner job %s deferred (%s): its result is kept until storage answers.",
        job.uuid,
        outage_describe(error),
    )


def completions_deferred() -> list[str]:
    """Job uuids whose result waits in the spool (oldest first)."""
    spool = _spool()
    if not spool.is_dir():
        return []
    entries = [p for p in spool.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [p.name for p in sorted(entries, key=lambda p: p.stat().st_mtime)]


def _payload(entry: Path, meta: dict, stack: contextlib.ExitStack) -> dict:
    payload = dict(meta["fields"])
    for name, info in meta["files"].items():
        handle = stack.enter_context(open(entry / name, "rb"))
        payload[name] = UploadedFile(file=handle, name=info["name"], size=info["size"])
    return payload


@contextlib.contextmanager
def _locked(entry: Path):
    """The entry's lock, or None when another process holds it."""
    try:
        handle = open(entry / LOCK, "a")
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield handle


def completion_retry(*, job_uuid, force: bool = False) -> str:
    """Apply a deferred completion now: ``completed`` (entry removed), ``deferred`` (still an
    outage: the next attempt is later), ``busy`` (another process is on it) or ``gone`` (no
    entry, or the job is no longer completing: nothing to apply). ``force`` ignores the
    entry's next-attempt time."""
    entry = _entry(job_uuid)
    with _locked(entry) as lock:
        if lock is None:
            return GONE if not entry.exists() else BUSY
        try:
            meta = json.loads((entry / META).read_text())
        except FileNotFoundError:
            return GONE
        if not force and meta["next_attempt"] > time.time():
            return DEFERRED
        try:
            job = RunnerJob.objects.filter(uuid=job_uuid).first()
            if job is None or job.state != RunnerJobState.COMPLETING:
                outcome = GONE
            else:
                with contextlib.ExitStack() as stack:
                    runner_job_handler(job).complete(
                        runner_job=job, result_payload=_payload(entry, meta, stack)
                    )
                outcome = COMPLETED
        except Exception as err:
            if not is_outage(err):
                raise
            meta["attempts"] += 1
            meta["next_attempt"] = time.time() + _delay(meta["attempts"])
            meta["last_error"] = outage_describe(err)
            _meta_write(entry, meta)
            return DEFERRED
        shutil.rmtree(entry, ignore_errors=True)
    waited = time.time() - meta["since"]
    logger.info(
        "Deferred completion of runner job %s: %s after %.0f s.", job_uuid, outcome, waited
    )
    return outcome


def completion_retry_soon(*, job_uuid) -> threading.Thread:
    """Retry the deferred completion of ``job_uuid`` in a thread of this process, following
    ``RUNNERS_COMPLETION_RETRY_DELAYS``, until it is applied or gone (the watchdog may do it
    first: then this thread finds it gone and stops)."""

    def run():
        attempts = 0
        try:
            while True:
                time.sleep(_delay(attempts))
                attempts += 1
                close_old_connections()
                try:
                    outcome = completion_retry(job_uuid=job_uuid, force=True)
                except Exception:
                    logger.exception("Deferred completion of runner job %s failed.", job_uuid)
                    return
                if outcome in (COMPLETED, GONE):
                    return
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=f"completion-{job_uuid}", daemon=True)
    thread.start()
    return thread
