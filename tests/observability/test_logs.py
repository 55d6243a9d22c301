"""Log lines: JSON with the correlation ids when LOG_FORMAT=json, and never a secret."""

import io
import json
import logging

import pytest

from marsha_runner.observability.logconfig import logging_config
from marsha_runner.telemetry.context import context_bound, context_current, request_id_clean
from marsha_runner.telemetry.logs import (
    ContextFilter,
    JSONFormatter,
    PlainFormatter,
    RedactSecretsFilter,
    redact,
)

RUNNER_TOKEN = "ptrt-7f1c2d9e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"
JOB_TOKEN = "ptrjt-11111111-2222-4333-8444-555555555555"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"runner {RUNNER_TOKEN} registered", RUNNER_TOKEN),
        (f'{{"runnerToken": "x{RUNNER_TOKEN[1:]}", "jobToken": "{JOB_TOKEN}"}}', JOB_TOKEN),
        (f"Authorization: Bearer {JWT}", JWT),
        (f"GET /ws/videos/1/?jwt={JWT}&x=1", JWT),
        ("postgres://marsha:pg-Secret-42@db:5432/marsha", "pg-Secret-42"),
        ("redis://:redisSecret99@cache:6379/0", "redisSecret99"),
        (
            "https://s3/b/k?X-Amz-Credential=AKIAEXAMPLE%2F20261202&X-Amz-Signature=abc123def456",
            "abc123def456",
        ),
        ("https://s3/b/k?X-Amz-Credential=AKIAEXAMPLE%2F20261202&X-Amz-Date=1", "AKIAEXAMPLE"),
        ("{'secret_key': 'wJalrXUtnFEMI/K7MDENG', 'bucket': 'b'}", "wJalrXUtnFEMI/K7MDENG"),
        ("password=hunter2hunter2 user=x", "hunter2hunter2"),
        ("/api/videos/1b2c/hls/ZXhwaXJlcy1zb29u:1sig/master.m3u8", "ZXhwaXJlcy1zb29u:1sig"),
    ],
)
def test_redact_removes_each_kind_of_secret(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_redact_keeps_ordinary_text():
    text = "Runner job 3f0c stored 720p of 9a1b (token refused for runner dev-runner)"
    assert redact(text) == text


def test_configured_secrets_are_redacted_wherever_they_appear():
    handler_output = io.StringIO()
    logger = _logger(handler_output, JSONFormatter(), literals=["a-configured-signing-key-1"])
    try:
        raise ValueError("signature check with a-configured-signing-key-1 failed")
    except ValueError:
        logger.exception("boom %s", {"key": "a-configured-signing-key-1"})
    line = json.loads(handler_output.getvalue())
    assert "a-configured-signing-key-1" not in handler_output.getvalue()
    assert line["message"] == "boom {'key': '[redacted]'}"
    assert "ValueError: signature check with [redacted] failed" in line["exc"]


def _logger(stream, formatter, literals=()):
    logger = logging.getLogger(f"tests.observability.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecretsFilter(literals=literals))
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger


def test_json_lines_carry_the_ids_known_where_they_are_written():
    stream = io.StringIO()
    logger = _logger(stream, JSONFormatter())
    with context_bound(request_id="req-0123456789", video_id="9a1b"):
        logger.info("one %s", "thing", extra={"resolution": 720})
        with context_bound(job_uuid="3f0c"):
            logger.warning("two")
    logger.info("three")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "one thing"
    assert (first["request_id"], first["video_id"], first["resolution"]) == (
        "req-0123456789",
        "9a1b",
        720,
    )
    assert "job_uuid" not in first
    assert (second["level"], second["job_uuid"], second["video_id"]) == ("WARNING", "3f0c", "9a1b")
    assert "request_id" not in third and "video_id" not in third
    assert context_current() == {}


def test_plain_lines_end_with_the_ids():
    stream = io.StringIO()
    logger = _logger(stream, PlainFormatter("%(levelname)s %(message)s"))
    with context_bound(request_id="req-0123456789"):
        logger.info("hello")
    assert stream.getvalue() == "INFO hello [request_id=req-0123456789]\n"


def test_a_request_id_from_outside_is_kept_only_when_plain():
    assert request_id_clean("0123456789abcdef") == "0123456789abcdef"
    assert request_id_clean("short") is None
    assert request_id_clean('abc"def\nghijkl') is None
    assert request_id_clean("x" * 65) is None


def test_log_format_is_checked():
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of plain, json"):
        logging_config(level="INFO", log_format="xml", secrets=[])


def test_extra_fields_of_any_type_are_redacted():
    """Django's SQL log passes its parameters as a tuple in ``extra``: a token among them."""
    stream = io.StringIO()
    logger = _logger(stream, JSONFormatter())
    logger.debug(
        "(0.001) SELECT 1", extra={"params": (RUNNER_TOKEN, 3), "sql": f"x = '{JOB_TOKEN}'"}
    )
    line = json.loads(stream.getvalue())
    assert RUNNER_TOKEN not in stream.getvalue() and JOB_TOKEN not in stream.getvalue()
    assert line["params"] == "('[redacted]', 3)"
    assert line["sql"] == "x = '[redacted]'"
