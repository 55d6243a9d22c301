"""Keep the websocket JWT out of server logs.

The token travels in the query string (``?jwt=``; browsers cannot set headers on a
websocket), and uvicorn logs every websocket handshake with its query string at INFO.
"""

import logging
import re

_JWT_IN_QUERY = re.compile(r"(\bjwt=)[^&\s\"']+")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact_jwt(text: str) -> str:
    return _JWT_IN_QUERY.sub(r"\1[redacted]", text)


class RedactJWTFilter(logging.Filter):
    """Rewrites ``jwt=<token>`` to ``jwt=[redacted]`` in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_jwt(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_jwt(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_jwt(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_jwt_redaction() -> None:
    """Idempotent: one filter per server logger (a logger filter survives dictConfig)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactJWTFilter) for f in logger.filters):
            logger.addFilter(RedactJWTFilter())
