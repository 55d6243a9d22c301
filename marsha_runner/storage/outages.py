"""Outages: a storage, broker or database that does not answer for a while.

One rule for the whole project: an outage is a reason to wait and
retry, never a reason to error a video or to count a runner's failure, and the HTTP API answers
it with 503 and ``Retry-After``. Only the media itself (unreadable, no video stream) errors a
video. This module says which exceptions are outages; it sits at the bottom of the layers so
the runners, videos and operations apps, the API and the runner views share that one answer.
"""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)

# S3 error codes meaning "try again", whatever the HTTP status says.
S3_RETRYABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed"}
)
# A key no object has: a HEAD of it answers 404 (reachable) or raises (unreachable).
REACHABILITY_KEY = ".reachability-probe"


class Unreachable(Exception):
    """A failure found to come from a service that does not answer (e.g. ffprobe could not
    read a URL while the storage was down): raised from the original error, an outage."""


def _outage_types() -> tuple:
    """Exception types that mean "a service did not answer", from the libraries installed."""
    from django.db import InterfaceError, OperationalError

    types = [Unreachable, OperationalError, InterfaceError, ConnectionError, TimeoutError]
    try:
        import botocore.exceptions as boto

        types += [boto.ConnectionError, boto.HTTPClientError]
    except ImportError:  # pragma: no cover - boto3 is a runtime dependency
        pass
    try:
        import psycopg

        types.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover - SQLite-only installs
        pass
    try:
        import kombu.exceptions

        types.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import redis.exceptions

        types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _s3_server_error(err) -> bool:
    """A botocore ClientError answered by a storage that is there but failing (5xx, SlowDown)."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return False
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return status >= 500 or response["Error"].get("Code") in S3_RETRYABLE_CODES


def is_outage(err: BaseException | None) -> bool:
    """Whether ``err`` (or an exception it was raised from) says a service did not answer:
    connection refused or reset, a timeout, a 5xx from S3, a database or broker connection
    error. A missing object, a refused credential or bad media is not an outage."""
    types = _outage_types()
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, types) or _s3_server_error(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def storage_reachable(storage) -> bool:
    """Whether ``storage`` answers now: one HEAD of a key nobody writes (S3), nothing on a
    local storage. False only for an outage; any other answer means it is there."""
    try:
        storage.exists(REACHABILITY_KEY)
    except Exception as err:  # noqa: BLE001 - classified just below
        if is_outage(err):
            return False
        logger.warning("Storage answered the reachability probe with %s.", type(err).__name__)
    return True


def storage_outage(err: BaseException, storage) -> bool:
    """Whether ``err``, raised while using ``storage``, is an outage: by its type, or because
    the storage does not answer now (a tool that read a URL says only that it failed)."""
    return is_outage(err) or not storage_reachable(storage)


def outage_retry_after() -> int:
    """Seconds a client is told to wait before retrying (``Retry-After``)."""
    return int(settings.OUTAGE_RETRY_AFTER)


OUTAGE_MESSAGE = (
    "The service is briefly unavailable (storage, broker or database): nothing was changed, "
    "retry in a few seconds."
)


def outage_describe(err: BaseException) -> str:
    """The outage for logs and staff: the exception's type only (its text may hold an endpoint
    or a key, which never reach an API answer)."""
    if isinstance(err, Unreachable):
        return str(err) or type(err).__name__
    return type(err).__name__
