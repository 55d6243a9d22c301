"""The correlation ids of the work in progress: request id, video id, job uuid.

Kept in context variables, so each request (thread or task) sees its own, and copied into
every log record by ``logs.ContextFilter``. A request id arrives with the request (or is
made), rides along to the Celery tasks it enqueues (a message header) and comes back in the
``X-Request-ID`` answer header: one upload can be followed across the web process, Celery and
the runners' calls.
"""

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("request_id", "video_id", "job_uuid", "task_name", "task_id")
_vars = {name: ContextVar(name, default=None) for name in FIELDS}
# A request id chosen by a client or a proxy is kept only when it is short and plain: it goes
# into every log line, so it may not carry newlines, quotes or a token's length.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_new() -> str:
    """32 random hex digits (a uuid4's entropy without building one: every request pays it)."""
    return os.urandom(16).hex()


def request_id_clean(value) -> str | None:
    """``value`` when it is usable as a request id, else None (make a new one)."""
    return value if isinstance(value, str) and REQUEST_ID_RE.match(value) else None


def context_current() -> dict:
    """The ids known here, without the unknown ones."""
    values = {name: var.get() for name, var in _vars.items()}
    return {name: value for name, value in values.items() if value is not None}


def context_set(**values) -> dict:
    """Set some ids (None leaves one as it is); returns tokens for ``context_reset``."""
    tokens = {}
    for name, value in values.items():
        if value is not None:
            tokens[name] = _vars[name].set(str(value))
    return tokens


def context_reset(tokens: dict) -> None:
    for name, token in tokens.items():
        _vars[name].reset(token)


@contextmanager
def context_bound(**values):
    """``with context_bound(video_id=…):`` the lines logged inside carry these ids."""
    tokens = context_set(**values)
    try:
        yield
    finally:
        context_reset(tokens)
