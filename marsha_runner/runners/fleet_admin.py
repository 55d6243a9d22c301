"""Staff admin of the runner fleet: registration tokens and runners (proxies of ``models.py``),
and what the jobs' admin (``admin.py``) shares with them: the read-only base, job names and
links, the online window.

A registration token's value is shown only to those allowed to read it, on its own page.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, JSON, XLSX

from marsha_runner.admin_kit import ReadOnlyAdmin, log_change, short_time, staff_action
from marsha_runner.videos.selectors import video_titles_of_destinations

from . import staff
from .models import Runner, RunnerJob, RunnerRegistrationToken
from .naming import token_prefix
from .resources import RunnerResource
from .selectors import (
    ACTIVE_STATES,
    runner_job_video_uuid,
    runners_with_activity,
    transcoded_video_directories,
)

# Reading a registration token's value (it registers runners) needs its own permission.
TOKEN_VALUE_PERMISSION = "reveal_runnerregistrationtoken"


def runner_jobs_titles(jobs) -> None:
    """Set ``video_title`` and ``video_id`` on each job of ``jobs`` (two queries for all):
    what ``str(job)`` and the links to our video need."""
    uuids = {runner_job_video_uuid(job) for job in jobs} - {None}
    directories = transcoded_video_directories(video_uuids=uuids)
    titles = video_titles_of_destinations(set(directories.values()))
    for job in jobs:
        video_id, title = titles.get(
            directories.get(runner_job_video_uuid(job) or ""), (None, None)
        )
        job.video_id, job.video_title = video_id, title


def job_links(jobs):
    """A list of links to ``jobs`` (named by ``runner_jobs_titles``) with their states."""
    if not jobs:
        return "-"
    return format_html_join(
        "",
        '<div><a href="{}">{}</a> ({})</div>',
        (
            (
                reverse("admin:runners_runnerjob_change", args=[job.pk]),
                job,
                job.get_state_display(),
            )
            for job in jobs
        ),
    )


def online_since():
    """Runners seen after this are online (``RUNNERS_ONLINE_WINDOW``, as the health report)."""
    return timezone.now() - timedelta(seconds=settings.RUNNERS_ONLINE_WINDOW)


class OnlineFilter(admin.SimpleListFilter):
    title = "online"
    parameter_name = "online"

    def lookups(self, request, model_admin):
        return (("yes", "Online"), ("no", "Offline"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(lastContact__gte=online_since())
        if self.value() == "no":
            return queryset.filter(lastContact__lt=online_since())
        return queryset


# --- Registration tokens ----------------------------------------------------------------------


@admin.register(RunnerRegistrationToken)
class RunnerRegistrationTokenAdmin(ReadOnlyAdmin):
    list_display = ("masked_token", "runner_count", "createdAt")
    fields = ("id", "token_to_copy", "runner_count", "createdAt", "updatedAt")
    readonly_fields = (*fields, "masked_token")
    ordering = ("-createdAt",)
    change_list_template = "admin/runners/runnerregistrationtoken/change_list.html"
    actions = ("revoke",)

    @staff_action(
        permission="revoke_runnerregistrationtoken",
        description="Revoke the selected registration tokens (unregisters their runners)",
    )
    def revoke(self, request, token, *, dry_run):
        return staff.registration_token_revoke(token=token, dry_run=dry_run)

    def get_queryset(self, request):
        # One query for the whole list, not one count per row.
        return super().get_queryset(request).annotate(runners=Count("runner"))

    def get_fields(self, request, obj=None):
        """The value only for those allowed to read it (it registers runners); the others
        see the same masked prefix as the list."""
        if request.user.has_perm(f"runners.{TOKEN_VALUE_PERMISSION}"):
            return self.fields
        return tuple("masked_token" if f == "token_to_copy" else f for f in self.fields)

    @admin.display(description="registration token")
    def masked_token(self, obj):
        return token_prefix(obj.registrationToken)

    @admin.display(description="registration token")
    def token_to_copy(self, obj):
        """The only place the value is shown: the detail page, with a copy button."""
        return format_html(
            '<code id="registration-token">{}</code> '
            '<button type="button" class="button" id="copy-registration-token" '
            'onclick="navigator.clipboard.writeText(document.getElementById('
            "'registration-token').textContent); this.textContent='Copied'\">Copy</button>",
            obj.registrationToken,
        )

    @admin.display(description="runners", ordering="runners")
    def runner_count(self, obj):
        return obj.runners

    def get_urls(self):
        generate = self.admin_site.admin_view(self.generate_view)
        return [
            path("generate/", generate, name="runners_runnerregistrationtoken_generate"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_generate": request.user.has_perm("runners.generate_runnerregistrationtoken"),
        }
        return super().changelist_view(request, extra_context)

    def generate_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("runners.generate_runnerregistrationtoken"):
            raise PermissionDenied
        token = staff.registration_token_create()
        log_change(request, token, "Generated a registration token", flag=ADDITION)
        where = (
            "copy it from this page"
            if request.user.has_perm(f"runners.{TOKEN_VALUE_PERMISSION}")
            else "someone allowed to read token values can copy it from this page"
        )
        self.message_user(
            request,
            f"A registration token was generated: {where} into the runners' configuration.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:runners_runnerregistrationtoken_change", args=[token.pk])
        )


# --- Runners ----------------------------------------------------------------------------------


@admin.register(Runner)
class RunnerAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [RunnerResource]
    export_formats = [CSV, JSON, XLSX]
    list_display = (
        "name",
        "ip",
        "version",
        "last_contact",
        "online",
        "in_progress",
        "completed_24h",
        "failed_24h",
    )
    fields = (
        "id",
        "name",
        "description",
        "ip",
        "version",
        "last_contact",
        "online",
        "in_progress",
        "current_jobs",
        "completed_24h",
        "failed_24h",
        "createdAt",
        "updatedAt",
    )
    readonly_fields = fields
    search_fields = ("name", "description", "ip")
    search_help_text = (
        f"Online: the runner called the API within {settings.RUNNERS_ONLINE_WINDOW // 60} min "
        "(RUNNERS_ONLINE_WINDOW). The library refreshes the last contact at most every 5 min "
        "and an idle runner only calls when pinged, so an idle runner may show offline."
    )
    list_filter = (OnlineFilter,)
    ordering = ("name",)
    actions = ("unregister",)

    @staff_action(
        permission="unregister_runner",
        description="Unregister the selected runners",
    )
    def unregister(self, request, runner, *, dry_run):
        return staff.runner_unregister_staff(runner=runner, dry_run=dry_run)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).defer("runnerToken")
        return runners_with_activity(queryset, since=timezone.now() - timedelta(hours=24))

    @admin.display(description="version")
    def version(self, obj):
        # The library stores no version; a runner sends it on each jobs/request only.
        return getattr(obj, "version", None) or "unknown"

    @admin.display(description="last contact", ordering="lastContact")
    def last_contact(self, obj):
        return short_time(obj.lastContact)

    @admin.display(description="current jobs")
    def current_jobs(self, obj):
        jobs = list(
            RunnerJob.objects.filter(runner_id=obj.pk, state__in=ACTIVE_STATES)
            .defer("processingJobToken")
            .order_by("createdAt")[:50]
        )
        runner_jobs_titles(jobs)
        return job_links(jobs)

    @admin.display(
        description="online",
        boolean=True,
    )
    def online(self, obj):
        return obj.lastContact >= online_since()

    @admin.display(description="in progress", ordering="jobs_in_progress")
    def in_progress(self, obj):
        return obj.jobs_in_progress

    @admin.display(description="completed (24 h)", ordering="jobs_completed_24h")
    def completed_24h(self, obj):
        return obj.jobs_completed_24h

    @admin.display(description="failed (24 h)", ordering="jobs_failed_24h")
    def failed_24h(self, obj):
        return obj.jobs_failed_24h
