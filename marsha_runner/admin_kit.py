"""The staff admin's one pattern for actions, lists at scale and log entries.

An action is a thin shell over a service: ``staff_action`` checks the action's own permission,
shows a confirmation page saying what will happen to which object (the service run with
``dry_run=True`` and rolled back), then runs it, reports per object what was done or skipped
and why, and writes an admin log entry for each object changed. ``bulk_action`` does the same
for a selection of any size ("select all N" is never loaded row by row).

Lists: ``StaffAdmin`` orders by an indexed column, shows bounded or estimated counts
(``BoundedCountPaginator``) and hides every action a user lacks the permission of.
"""

import functools
import json
import uuid
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from marsha_runner.counting import COUNT_BOUND, bounded_count, planner_estimate

__all__ = ["COUNT_BOUND", "bounded_count", "planner_estimate"]  # re-exported for the admins

# One action runs on at most this many objects one by one (bulk actions have no limit).
MAX_OBJECTS = 500
# Per-object messages shown before "… and N more".
MAX_MESSAGES = 20
PREVIEW_ROWS = 50


class BoundedCountPaginator(Paginator):
    """The changelist's paginator with a count that stays fast at a million rows."""

    @cached_property
    def count(self):
        return bounded_count(self.object_list)


class StaffAdmin(admin.ModelAdmin):
    """Base of every staff ModelAdmin: bounded counts, permission-filtered actions."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    actions_selection_counter = True

    def annotate_objects(self, objects) -> None:
        """Set, in bulk, what ``str(obj)`` needs to name each object (a job's video title):
        called on every object a confirmation, a message or a log entry names."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletions go through a service or not at all
        return {
            name: action
            for name, action in actions.items()
            if _allowed(request, self.model, action[0])
        }


class ReadOnlyAdmin(StaffAdmin):
    """Rows a flow writes (the runner protocol, the migration, a transcription): staff look,
    and act through actions only. One class, so no such list grows an add, change or delete
    button by one admin forgetting one of the three."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def uuid_or_text_search(queryset, search_term, *, by_uuid, by_text):
    """A staff search box's ``get_search_results``: every row for a blank term,
    ``by_uuid(value, term)`` when the term is a uuid (a video id, a job uuid), else
    ``by_text(term)``; never distinct. One parse of the term for every admin that searches
    by id, so a uuid typed with spaces or braces finds the same rows everywhere."""
    term = search_term.strip()
    if not term:
        return queryset, False
    try:
        value = uuid.UUID(term)
    except ValueError:
        return by_text(term), False
    return by_uuid(value, term), False


def _allowed(request, model, func) -> bool:
    codename = getattr(func, "staff_permission", None)
    return codename is None or request.user.has_perm(f"{model._meta.app_label}.{codename}")


def _require(modeladmin, request, codename):
    if not request.user.has_perm(f"{modeladmin.model._meta.app_label}.{codename}"):
        raise PermissionDenied


@dataclass(frozen=True)
class Outcome:
    obj: object
    done: bool
    text: str


def _confirm_page(modeladmin, request, *, description, rows, total, intro, extra=None):
    _annotate(modeladmin, [row.obj for row in rows])
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": opts,
        "title": f"{description}: are you sure?",
        "description": description,
        "intro": intro,
        "rows": rows,
        "total": total,
        "listed": len(rows),
        "extra": extra or [],
        "action_name": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "form_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin_kit/confirm_action.html", context)


def sentence(text: str) -> str:
    """``text`` ending with one full stop (a reason may already end with one)."""
    text = str(text).rstrip()
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


def _annotate(modeladmin, objects) -> None:
    annotate = getattr(modeladmin, "annotate_objects", None)
    if annotate is not None and objects:
        annotate(objects)


def _as_now(modeladmin, outcomes) -> list:
    """The outcomes with each changed object read again, so messages and log entries name it
    as it is after the action (a video now processing is not called "ready")."""
    changed = [o for o in outcomes if o.done]
    fresh = modeladmin.model._default_manager.in_bulk([o.obj.pk for o in changed])
    _annotate(modeladmin, list(fresh.values()))
    return [Outcome(fresh.get(o.obj.pk, o.obj), o.done, o.text) if o.done else o for o in outcomes]


def _report(modeladmin, request, outcomes, description):
    outcomes = _as_now(modeladmin, outcomes)
    done = [o for o in outcomes if o.done]
    skipped = [o for o in outcomes if not o.done]
    for outcome in done[:MAX_MESSAGES]:
        modeladmin.message_user(
            request, sentence(f"{outcome.obj}: {outcome.text}"), messages.SUCCESS
        )
    for outcome in skipped[:MAX_MESSAGES]:
        modeladmin.message_user(
            request, sentence(f"{outcome.obj}: skipped: {outcome.text}"), messages.WARNING
        )
    hidden = max(0, len(done) - MAX_MESSAGES) + max(0, len(skipped) - MAX_MESSAGES)
    modeladmin.message_user(
        request,
        f"{description}: {len(done)} done, {len(skipped)} skipped"
        + (f" ({hidden} more not listed)." if hidden else "."),
        messages.INFO,
    )
    if done:
        _log_each(request, done, description)


def _log_each(request, done, description):
    """One log entry per object changed, naming the action and its outcome (bulk insert)."""
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                user_id=request.user.pk,
                content_type_id=ContentType.objects.get_for_model(
                    o.obj, for_concrete_model=False
                ).pk,
                object_id=str(o.obj.pk),
                object_repr=str(o.obj)[:200],
                action_flag=CHANGE,
                change_message=f"{description}: {o.text}",
            )
            for o in done
        ]
    )


def staff_action(*, permission: str, description: str, refusals=(), notes=()):
    """Decorate ``run(modeladmin, request, obj, *, dry_run) -> str`` into an admin action.

    ``run`` calls one service and returns what it did (or, with ``dry_run``, what it would
    do); a service exception listed in ``refusals`` (or a ValidationError) means the object
    is skipped, with the exception's text as the reason. ``notes``: sentences the
    confirmation page shows above the objects (what happens later, what a failure does).
    """
    refusals = (*refusals, ValidationError)

    def decorator(run):
        @functools.wraps(run)
        def action(modeladmin, request, queryset):
            _require(modeladmin, request, permission)
            objects = list(queryset[: MAX_OBJECTS + 1])
            if len(objects) > MAX_OBJECTS:
                modeladmin.message_user(
                    request,
                    f"{description}: select at most {MAX_OBJECTS} objects at once.",
                    messages.ERROR,
                )
                return None

            _annotate(modeladmin, objects)

            def outcome(obj, dry_run):
                try:
                    return Outcome(obj, True, run(modeladmin, request, obj, dry_run=dry_run))
                except refusals as err:
                    text = "; ".join(err.messages) if isinstance(err, ValidationError) else err
                    return Outcome(obj, False, str(text))

            if request.POST.get("confirmed") != "yes":
                rows = [outcome(obj, True) for obj in objects]
                return _confirm_page(
                    modeladmin,
                    request,
                    description=description,
                    rows=rows,
                    total=len(rows),
                    intro="Each selected object, and what the action will do to it:",
                    extra=list(notes),
                )
            outcomes = [outcome(obj, False) for obj in objects]
            _report(modeladmin, request, outcomes, description)
            return None

        action.staff_permission = permission
        return admin.action(description=description)(action)

    return decorator


def bulk_action(*, permission: str, description: str, preview, verb_flag=DELETION):
    """Decorate ``run(modeladmin, request, queryset) -> str`` for selections of any size.

    ``preview(queryset) -> list[str]`` describes what will happen (bounded counts); the
    confirmation page lists a sample of the selection; one log entry records the outcome.
    """

    def decorator(run):
        @functools.wraps(run)
        def action(modeladmin, request, queryset):
            _require(modeladmin, request, permission)
            if request.POST.get("confirmed") != "yes":
                sample = [Outcome(obj, True, "") for obj in queryset[:PREVIEW_ROWS]]
                return _confirm_page(
                    modeladmin,
                    request,
                    description=description,
                    rows=sample,
                    total=bounded_count(queryset),
                    intro="The selection (first rows):",
                    extra=preview(queryset),
                )
            text = run(modeladmin, request, queryset)
            modeladmin.message_user(request, f"{description}: {text}.", messages.SUCCESS)
            opts = modeladmin.model._meta
            LogEntry.objects.create(
                user_id=request.user.pk,
                content_type_id=ContentType.objects.get_for_model(
                    modeladmin.model, for_concrete_model=False
                ).pk,
                object_id=None,
                object_repr=f"{opts.verbose_name_plural} (bulk)",
                action_flag=verb_flag,
                change_message=f"{description}: {text}",
            )
            return None

        action.staff_permission = permission
        return admin.action(description=description)(action)

    return decorator


def rolled_back(call):
    """``call()`` in a transaction that is rolled back (on_commit work discarded): the
    confirmation page's preview of a service that has no ``dry_run`` of its own."""
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result


def log_change(request, obj, message: str, flag=CHANGE, *, model=None) -> None:
    """An admin log entry for one object changed outside an action (buttons, custom views);
    ``obj`` None with ``model``: an entry about the model as a whole (a ping)."""
    model = model or type(obj)
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(model, for_concrete_model=False).pk,
        object_id=None if obj is None else str(obj.pk),
        object_repr=str(model._meta.verbose_name_plural if obj is None else obj)[:200],
        action_flag=flag,
        change_message=message,
    )


def human_size(value) -> str:
    """Bytes in human units (1.5 GB), as staff read them."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def short_time(value) -> str:
    """A time as staff read it: local, to the second, no ISO ``T`` nor microseconds."""
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def json_block(value):
    """Formatted JSON in a <pre>, escaped."""
    return format_html(
        '<pre style="white-space: pre-wrap">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, default=str),
    )
