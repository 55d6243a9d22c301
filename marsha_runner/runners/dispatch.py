"""``jobs/request`` for a fleet: an async view over batched reads (issue 6).

Every runner asks ``jobs/request`` the moment a ping arrives, so N runners make N calls at
once, and between two job state changes the answer is the same for all runners asking for
the same job types. Calls waiting while a read runs join the *next* read: one query for the
runner tokens of the whole batch, one for the pending jobs, on one of a few reader threads.
A read always starts after every call it answers arrived, so a job committed pending before
a call is offered to it, and a job offered was pending when the read began (the library's
own guarantee: accept re-checks the state under a lock). Without concurrent calls a batch is
one call: no waiting is added.

Concurrent requesters take different jobs (issue 18): each runner's answer starts with a job
reserved for it (``reservations.py``), unless ``RUNNERS_DISPATCH_SPREAD`` is off.

``lastContact`` is written at most every ``LAST_CONTACT_EVERY`` (as PeerTube and the
library's ``update_last_contact``), by a conditional UPDATE, so a fleet asking every second
does not write the runner row every second.
"""

import asyncio
import json
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import AsyncToSync, sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_peertube_runner_connector.models import Runner, RunnerJob
from django_peertube_runner_connector.utils.request import get_client_ip

from .fields import TOKEN_MAX, runner_request_clean, runner_text_clean
from .problems import RunnerRefusal, problem_response, runner_body
from .protocol import LAST_CONTACT_EVERY, runner_contact
from .reservations import ANSWERED, reservations_answer
from .selectors import runner_jobs_available

logger = logging.getLogger(__name__)

READER_THREADS = 4
CANDIDATES = 50  # pending jobs read, so that many runners each get a different first job

_readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="runner-dispatch")


@dataclass
class _Queue:
    """Calls of one event loop asking for one job-type set, and the task reading for them."""

    waiting: list = field(default_factory=list)
    task: asyncio.Task | None = None


# One set of queues per event loop (tests and Django's sync client run several loops).
_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Offer:
    """What one read found: the batch's known runner tokens and the jobs to offer."""

    runner_tokens: frozenset
    jobs: list


# The ORM compiled the two queries on every read, ~10x the cost of running them on SQLite
# (measured: 544 µs vs 39 µs for the jobs). The jobs query is compiled once per job-type set
# from the selector, which stays the one definition of what is offered.
_jobs_sql: dict = {}
_UUID = RunnerJob._meta.get_field("uuid")


def _pending_jobs(job_types) -> list[dict]:
    key = tuple(job_types) if job_types else None
    compiled = _jobs_sql.get(key)
    if compiled is None:
        queryset = runner_jobs_available(job_types=job_types, limit=CANDIDATES).values_list(
            "uuid", "type", "payload"
        )
        compiled = _jobs_sql.setdefault(key, queryset.query.sql_with_params())
    with connection.cursor() as cursor:
        cursor.execute(*compiled)
        rows = cursor.fetchall()
    return [
        {
            "uuid": str(_UUID.to_python(uuid)),
            "type": type_,
            "payload": json.loads(payload) if isinstance(payload, str | bytes) else payload,
        }
        for uuid, type_, payload in rows
    ]


def _runner_tokens_known(runner_tokens, *, stale_before) -> dict:
    """{token: whether its lastContact is older than ``stale_before``} for known tokens."""
    quote = connection.ops.quote_name
    meta = Runner._meta
    token = quote(meta.get_field("runnerToken").column)
    last_contact = quote(meta.get_field("lastContact").column)
    placeholders = ", ".join(["%s"] * len(runner_tokens))
    # Identifiers from the model, quoted; every value is a parameter.
    table = quote(meta.db_table)
    sql = f"SELECT {token}, {last_contact} < %s FROM {table} WHERE {token} IN ({placeholders})"  # noqa: S608
    field = meta.get_field("lastContact")
    stale_before = field.get_db_prep_value(stale_before, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stale_before, *runner_tokens])
        return {found: bool(stale) for found, stale in cursor.fetchall()}


def _offer_read(*, runner_tokens, job_types, ips) -> Offer:
    """Blocking: the batch's runners and the pending jobs; stale last contacts recorded."""
    known = _runner_tokens_known(
        list(runner_tokens), stale_before=timezone.now() - LAST_CONTACT_EVERY
    )
    jobs = _pending_jobs(job_types)
    stale = [token for token, is_stale in known.items() if is_stale]
    if stale:  # at most once per runner every LAST_CONTACT_EVERY
        for runner in Runner.objects.filter(runnerToken__in=stale):
            runner_contact(runner=runner, ip=ips[runner.runnerToken])
    return Offer(runner_tokens=frozenset(known), jobs=jobs)


def _offer_read_on_reader(**kwargs) -> Offer:
    """On a reader thread. PostgreSQL: the connection goes back to the pool after each batch,
    as request_finished does for a view. SQLite: each reader keeps its connection (opening one
    cost as much as the read itself, measured), unless it failed."""
    try:
        return _offer_read(**kwargs)
    except Exception:
        connection.close()
        raise
    finally:
        if connection.vendor != "sqlite":
            close_old_connections()


async def _in_reader(**kwargs) -> Offer:
    # Called from synchronous code (Django's test client, async_to_sync): that thread, so its
    # transaction is seen. Under a server: our reader threads, not the request's thread.
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return await sync_to_async(_offer_read, thread_sensitive=True)(**kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_readers, lambda: _offer_read_on_reader(**kwargs))


async def _read_batches(queue: _Queue, job_types) -> None:
    """Read for every call waiting, again and again until none waits."""
    try:
        while queue.waiting:
            batch, queue.waiting = queue.waiting, []
            tokens = {token for token, _, _ in batch}
            ips = {token: ip for token, ip, _ in batch}
            try:
                offer = await _in_reader(runner_tokens=tokens, job_types=job_types, ips=ips)
            except Exception as err:  # noqa: BLE001  (each caller answers 503)
                logger.exception("jobs/request: the read failed.")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for token, _, future in batch:
                if not future.done():  # a caller that went away
                    if token not in offer.runner_tokens:
                        future.set_result(None)
                    elif settings.RUNNERS_DISPATCH_SPREAD:
                        future.set_result(reservations_answer(token=token, jobs=offer.jobs))
                    else:
                        future.set_result(offer.jobs[:ANSWERED])
    finally:
        queue.task = None


async def runner_jobs_offer(*, runner_token: str, job_types, ip: str | None) -> list | None:
    """Pending jobs (uuid, type, payload) for this runner; None for an unknown runner token.

    ``job_types``: a list of known types, or None for every type.
    """
    loop = asyncio.get_running_loop()
    key = tuple(sorted(set(job_types))) if job_types else None
    queue = _queues.setdefault(loop, {}).setdefault(key, _Queue())
    future = loop.create_future()
    queue.waiting.append((runner_token, ip or "", future))
    if queue.task is None:
        queue.task = loop.create_task(_read_batches(queue, list(key) if key else None))
    return await future


@require_POST
async def runner_jobs_request(request):
    """POST jobs/request: ``{"availableJobs": [...]}`` for a known runner token."""
    try:
        data = runner_body(request)
        job_types = runner_request_clean(
            job_types=data.get("jobTypes"), version=data.get("version")
        )
        token = data.get("runnerToken")
        token = runner_text_clean(token, name="runnerToken", max_length=TOKEN_MAX)
        try:
            jobs = await runner_jobs_offer(
                runner_token=token, job_types=job_types, ip=get_client_ip(request)
            )
        except Exception as err:  # noqa: BLE001  (logged by the reader)
            raise RunnerRefusal(503, "service_unavailable", "Jobs cannot be read now.") from err
        if jobs is None:
            raise RunnerRefusal(404, "unknown_runner_token", "Unknown runner token.")
    except RunnerRefusal as refusal:
        return problem_response(refusal)
    return JsonResponse({"availableJobs": jobs})
