"""Log records with their correlation ids, as JSON when asked, and never with a secret.

``settings.LOGGING`` puts ``ContextFilter`` and ``RedactSecretsFilter`` on the console
handler (so every logger's records pass through them) and picks ``JSONFormatter`` when
``LOG_FORMAT=json``. Redaction works on the final text of the message and of the traceback:
a secret passed as an argument, inside an exception message or an URL is caught the same way.
"""

import json
import logging
import re
from datetime import UTC, datetime

from .context import FIELDS, context_current

REDACTED = "[redacted]"
# Secrets by their shape, wherever they appear.
_SHAPES = [
    # PeerTube runner, registration and job tokens (ptrt-, ptrrt-, ptrjt- + a uuid).
    re.compile(r"\bptr(?:r|j)?t-[0-9A-Za-z-]{8,}"),
    # JSON Web Tokens (the API's and the websocket's).
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # HTTP authorization values (Bearer <token>, Basic <base64>).
    re.compile(r"(?i)\b(?:bearer\s+[A-Za-z0-9._~+/=-]{8,}|basic\s+[A-Za-z0-9+/=]{16,})"),
    # The token in the path of a private bucket's HLS URL (/api/videos/<id>/hls/<token>/…).
    re.compile(r"(?<=/hls/)[^/\s?\"']+"),
    # A password in a URL (postgres://user:password@host, redis://:password@host).
    re.compile(r"(?<=://)[^/\s:@]*:[^/\s@]+(?=@)"),
]
# Secrets by their name: the value after ``name=`` / ``"name": "…"`` (query strings, JSON,
# reprs): presigned URL signatures and credentials, tokens, passwords, keys.
_NAMED = re.compile(
    r"(?i)((?:x-amz-(?:signature|credential|security-token)|signature|awsaccesskeyid|"
    r"[a-z_]*(?:token|password|passwd|secret|api_?key|access_?key|dsn)[a-z_]*|jwt)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s&\"',;}]+)"
)
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def redact(text: str, literals=()) -> str:
    """``text`` with every secret replaced by ``[redacted]``: the configured values
    (``literals``: keys from the settings), then anything shaped like a token or named so."""
    for literal in literals:
        if literal and literal in text:
            text = text.replace(literal, REDACTED)
    for shape in _SHAPES:
        text = shape.sub(REDACTED, text)
    return _NAMED.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in) and traceback without secrets.

    ``literals`` are the configured secrets themselves (Django's and the JWT signing key, S3
    secret keys, the metrics token, database and Redis passwords): settings hand them over.
    """

    def __init__(self, literals=(), name=""):
        super().__init__(name)
        # Longest first, so a secret containing another one is replaced whole; very short
        # values would blank out ordinary words.
        self.literals = sorted({str(v) for v in literals if v and len(str(v)) >= 6}, key=len)[::-1]

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.msg)
        # Arguments are cleaned one by one, not merged into the message: some formatters
        # (uvicorn's access line) read them.
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.literals)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.literals)
        # ``extra=`` fields too, whatever their type (Django's SQL log passes its parameters
        # as a tuple: a runner's token is one of them).
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, self._clean(value))
        return True

    def _clean(self, value):
        """A string redacted; any other object by its text when that text shows a secret
        (an exception, a dict of options), else left as is for its format."""
        if isinstance(value, str):
            return redact(value, self.literals)
        if isinstance(value, int | float | bool | None):
            return value
        text = str(value)
        cleaned = redact(text, self.literals)
        return value if cleaned == text else cleaned


class ContextFilter(logging.Filter):
    """Copies the correlation ids known here (``context.py``) onto the record, without
    overriding ids the caller passed explicitly with ``extra=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context_current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the correlation ids, the
    Celery task when there is one, the traceback, and any ``extra=`` field."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in FIELDS and not key.startswith("_"):
                line[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """The plain text format, with the correlation ids known for the line appended (before
    a traceback, if any)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        ids = " ".join(
            f"{name}={getattr(record, name)}"
            for name in FIELDS
            if getattr(record, name, None) is not None
        )
        return f"{text} [{ids}]" if ids else text
