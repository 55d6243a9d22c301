"""Which job each runner's ``jobs/request`` answer starts with (issue 18, point 3).

peertube-runner accepts the first job of its list. When every runner gets the same list, all
but one lose the race at each ping and sit idle until the next one. So each answer starts with
a job *reserved* for that runner for ``RESERVATION_SECONDS``: its own reservation if that job
is still offered, else the first job no other runner holds; the other jobs follow in order. A
reservation only reorders, it never hides a job: when every pending job is held by another
runner (a runner whose slots are all busy does not accept), the plain order is answered.

Reservations live in this process: several web processes each keep theirs, and a runner that
loses a race anyway is pinged again (``protocol.runner_job_accept``) when a job nobody holds
is still pending.
"""

import threading
import time

ANSWERED = 10  # jobs in one answer, as PeerTube
RESERVATION_SECONDS = 2.0  # request → accept takes milliseconds

_held: dict[str, tuple[str, float]] = {}  # job uuid → (runner token, until)
_asked: dict[str, float] = {}  # runner token → when it last asked jobs/request
_lock = threading.Lock()


def _holder(job_uuid: str, now: float) -> str | None:
    token, until = _held.get(job_uuid, (None, 0.0))
    return token if until > now else None


def reservations_answer(*, token: str, jobs: list) -> list:
    """``jobs`` (pending, in dispatch order) as this runner's answer: its reserved job first."""
    now = time.monotonic()
    if not jobs:
        with _lock:
            _asked[token] = now
        return jobs
    with _lock:
        _asked[token] = now
        if len(_held) > 1000:
            for uuid in [uuid for uuid, (_, until) in _held.items() if until <= now]:
                del _held[uuid]
        mine = free = None
        for index, job in enumerate(jobs):
            holder = _holder(job["uuid"], now)
            if holder == token:
                mine = index
                break
            if holder is None and free is None:
                free = index
        chosen = mine if mine is not None else free
        if chosen is None:
            return jobs[:ANSWERED]
        _held[jobs[chosen]["uuid"]] = (token, now + RESERVATION_SECONDS)
    return [jobs[chosen], *jobs[:chosen], *jobs[chosen + 1 :]][:ANSWERED]


def reservations_asked_since(*, token: str, since: float) -> bool:
    """Whether this runner asked ``jobs/request`` here after ``since`` (``time.monotonic``)."""
    with _lock:
        return _asked.get(token, float("-inf")) > since


def reservations_free_exist(*, job_uuids, token: str) -> bool:
    """Whether one of ``job_uuids`` (pending) is held by no runner but ``token``'s."""
    now = time.monotonic()
    with _lock:
        return any(_holder(str(uuid), now) in (None, token) for uuid in job_uuids)
