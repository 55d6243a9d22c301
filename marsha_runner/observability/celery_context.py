"""The request id rides along to Celery tasks, and each task logs with its ids.

``before_task_publish`` puts the publisher's request id (and video id) in the message
headers; ``task_prerun`` binds them in the worker (a task enqueued by cron or beat gets a
new request id of its own), with the task's name, id and its ``video_id`` argument;
``task_postrun`` unbinds them. Eager tasks (the embedded default) run in the caller's
context already and get the task fields on top. A worker keeps Django's logging (JSON lines,
ids, redaction): with a ``setup_logging`` receiver Celery configures none of its own.
"""

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from marsha_runner.telemetry.context import (
    context_current,
    context_reset,
    context_set,
    request_id_clean,
    request_id_new,
)

HEADER_REQUEST_ID = "x_request_id"
HEADER_VIDEO_ID = "x_video_id"
_bound: dict = {}


@setup_logging.connect(dispatch_uid="observability-keep-django-logging")
def keep_django_logging(**_):
    """Django's ``LOGGING`` is already in place: Celery must not reset the root's level or
    add its handler (it would drop INFO lines and print others without ids)."""


@before_task_publish.connect(dispatch_uid="observability-carry-ids")
def carry_ids(headers=None, **_):
    if headers is None:
        return
    current = context_current()
    if current.get("request_id"):
        headers[HEADER_REQUEST_ID] = current["request_id"]
    if current.get("video_id"):
        headers[HEADER_VIDEO_ID] = current["video_id"]


@task_prerun.connect(dispatch_uid="observability-bind-ids")
def bind_ids(task_id=None, task=None, kwargs=None, **_):
    request = task.request
    request_id = (
        request_id_clean(getattr(request, HEADER_REQUEST_ID, None))
        or context_current().get("request_id")
        or request_id_new()
    )
    video_id = (kwargs or {}).get("video_id") or getattr(request, HEADER_VIDEO_ID, None)
    _bound[task_id] = context_set(
        request_id=request_id, video_id=video_id, task_name=task.name, task_id=task_id
    )


@task_postrun.connect(dispatch_uid="observability-unbind-ids")
def unbind_ids(task_id=None, **_):
    tokens = _bound.pop(task_id, None)
    if tokens:
        context_reset(tokens)
