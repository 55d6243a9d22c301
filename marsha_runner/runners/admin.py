"""Staff admin of the library's models, under "Transcoding" (proxies of ``models.py``): runner
jobs and the transcoded side here, the fleet (registration tokens, runners) in
``fleet_admin``.

Every token is masked or absent (lists, searches, detail pages); every row is read-only and
changes only through actions, thin shells over ``staff`` and ``protocol`` services.
The library's own ModelAdmins (which list tokens) are unregistered.
"""

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django_peertube_runner_connector import admin as _library_admin  # noqa: F401 (registers first)
from django_peertube_runner_connector import models as library
from django_peertube_runner_connector.models import RunnerJobState
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, JSON, XLSX

from marsha_runner.admin_kit import (
    ReadOnlyAdmin,
    bounded_count,
    bulk_action,
    json_block,
    log_change,
    sentence,
    staff_action,
    uuid_or_text_search,
)
from marsha_runner.videos.selectors import (
    video_current_destinations,
    video_outputs_root,
)

from . import staff
from .fleet_admin import job_links, runner_jobs_titles
from .models import (
    Runner,
    RunnerJob,
    TranscodedFile,
    TranscodedPlaylist,
    TranscodedVideo,
    TranscodingJobInfo,
)
from .naming import mask_token, runner_job_resolution
from .resources import RunnerJobResource
from .selectors import (
    runner_job_failures,
    runner_jobs_of_videos,
    transcoded_video_uuids_under,
)

for _model in (
    library.RunnerRegistrationToken,
    library.Runner,
    library.RunnerJob,
    library.Video,
    library.VideoFile,
    library.VideoJobInfo,
    library.VideoStreamingPlaylist,
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# Keys whose values are secrets wherever they appear in a payload.
SECRET_KEY_MARKERS = ("token", "secret", "password", "signature", "credential")
STATE_COLOURS = {
    RunnerJobState.PENDING: "#6c757d",
    RunnerJobState.WAITING_FOR_PARENT_JOB: "#6c757d",
    RunnerJobState.PROCESSING: "#0d6efd",
    RunnerJobState.COMPLETING: "#0d6efd",
    RunnerJobState.COMPLETED: "#198754",
    RunnerJobState.ERRORED: "#dc3545",
    RunnerJobState.PARENT_ERRORED: "#dc3545",
    RunnerJobState.CANCELLED: "#fd7e14",
    RunnerJobState.PARENT_CANCELLED: "#fd7e14",
}


def mask_secrets(value):
    """A copy of a JSON value with every token-like key's value masked, and every URL's
    query string (presigned signatures) cut."""
    if isinstance(value, dict):
        return {
            key: mask_token(str(item))
            if any(m in key.lower() for m in SECRET_KEY_MARKERS) and isinstance(item, str)
            else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")) and "?" in value:
        return value.split("?", 1)[0] + "?…"
    return value


# --- Runner jobs ------------------------------------------------------------------------------


class RunnerJobChangeList(ChangeList):
    """Names the page's jobs by their video's title in two more queries (not two per row)."""

    def get_results(self, request):
        super().get_results(request)
        runner_jobs_titles(self.result_list)


class RunnerFilter(admin.SimpleListFilter):
    """The runner filter by runner name (the library's model has no name of its own)."""

    title = "runner"
    parameter_name = "runner"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Runner.objects.order_by("name").values_list(
            "pk", "name"
        )[:200]]  # fmt: skip

    def queryset(self, request, queryset):
        return queryset.filter(runner_id=self.value()) if self.value() else queryset


@admin.register(RunnerJob)
class RunnerJobAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [RunnerJobResource]
    export_formats = [CSV, JSON, XLSX]
    list_display = (
        "uuid",
        "type",
        "coloured_state",
        "video_link",
        "resolution",
        "progress_bar",
        "runner_name",
        "failures",
        "startedAt",
        "finishedAt",
        "age",
    )
    list_filter = ("state", "type", RunnerFilter)
    list_select_related = ("runner",)
    search_fields = ("uuid",)
    search_help_text = "A job uuid, or a video id (every job of that video)."
    ordering = ("-createdAt",)
    fields = (
        "uuid",
        "type",
        "coloured_state",
        "video_link",
        "resolution",
        "progress_bar",
        "runner_name",
        "failures",
        "error",
        "priority",
        "failure_history",
        "masked_job_token",
        "waits_for",
        "dependent_jobs",
        "formatted_payload",
        "formatted_private_payload",
        "startedAt",
        "finishedAt",
        "createdAt",
        "updatedAt",
    )
    readonly_fields = fields
    actions = ("cancel_jobs", "requeue_jobs", "delete_finished_jobs")
    import_export_change_list_template = "admin/runners/runnerjob/change_list.html"

    def get_changelist(self, request, **kwargs):
        return RunnerJobChangeList

    def annotate_objects(self, objects):
        runner_jobs_titles(objects)

    def get_urls(self):
        ping = self.admin_site.admin_view(self.ping_view)
        return [path("ping/", ping, name="runners_runnerjob_ping"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_ping": request.user.has_perm("runners.ping_runners"),
        }
        return super().changelist_view(request, extra_context)

    def ping_view(self, request):
        """Ping runners: a button, not an action (it concerns no job in particular)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("runners.ping_runners"):
            raise PermissionDenied
        text = staff.runner_jobs_ping()
        log_change(request, None, f"Ping runners: {text}", model=RunnerJob)
        self.message_user(request, sentence(f"Ping runners: {text}"), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:runners_runnerjob_changelist"))

    def get_object(self, request, object_id, from_field=None):
        job = super().get_object(request, object_id, from_field)
        if job is not None:
            runner_jobs_titles([job])
        return job

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("processingJobToken", "runner__runnerToken", "dependsOnRunnerJob")
        )

    def get_search_results(self, request, queryset, search_term):
        def by_uuid(value, _term):
            prefix = video_outputs_root(video_id=value)
            video_uuids = transcoded_video_uuids_under(prefix=prefix)
            # Materialised (a video has a handful of jobs): the OR of two index lookups, where
            # a subquery in the OR made PostgreSQL scan the jobs table.
            of_video = list(
                runner_jobs_of_videos(video_uuids=video_uuids).values_list("pk", flat=True)[:1000]
            )
            return queryset.filter(Q(uuid=value) | Q(pk__in=of_video))

        return uuid_or_text_search(
            queryset, search_term, by_uuid=by_uuid, by_text=lambda _term: queryset.none()
        )

    @admin.display(description="state", ordering="state")
    def coloured_state(self, obj):
        return format_html(
            '<span class="job-state" style="color: #fff; background: {}; padding: 1px 6px;'
            ' border-radius: 3px">{}</span>',
            STATE_COLOURS.get(obj.state, "#6c757d"),
            obj.get_state_display(),
        )

    @admin.display(description="video")
    def video_link(self, obj):
        if getattr(obj, "video_id", None) is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:videos_video_change", args=[obj.video_id]),
            obj.video_title,
        )

    @admin.display(description="resolution")
    def resolution(self, obj):
        resolution = runner_job_resolution(obj)
        return f"{resolution}p" if resolution else "-"

    @admin.display(description="waits for (its parent job)")
    def waits_for(self, obj):
        parent_id = obj.dependsOnRunnerJob_id
        if parent_id is None:
            return "-"
        parent = RunnerJob.objects.defer("processingJobToken").get(pk=parent_id)
        runner_jobs_titles([parent])
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:runners_runnerjob_change", args=[parent.pk]),
            parent,
            parent.get_state_display(),
        )

    @admin.display(description="dependent jobs (they wait for this one)")
    def dependent_jobs(self, obj):
        children = list(
            RunnerJob.objects.filter(dependsOnRunnerJob_id=obj.pk).defer("processingJobToken")
        )
        runner_jobs_titles(children)
        return job_links(children)

    @admin.display(description="failures, each")
    def failure_history(self, obj):
        failures = runner_job_failures(job_uuid=obj.uuid)
        if not failures:
            return "-"
        return format_html_join(
            "",
            "<div>{} · {} · {}</div>",
            ((f.failed_on.strftime("%Y-%m-%d %H:%M:%S"), f.runner_name or "-", f.message)
             for f in failures),
        )  # fmt: skip

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, obj):
        if obj.progress is None:
            return "-"
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress>', obj.progress, obj.progress
        )

    @admin.display(description="runner", ordering="runner__name")
    def runner_name(self, obj):
        return obj.runner.name if obj.runner else "-"

    @admin.display(description="age", ordering="createdAt")
    def age(self, obj):
        return timesince(obj.createdAt)

    @admin.display(description="processing job token")
    def masked_job_token(self, obj):
        return mask_token(obj.processingJobToken)

    @admin.display(description="payload")
    def formatted_payload(self, obj):
        return json_block(mask_secrets(obj.payload))

    @admin.display(description="private payload")
    def formatted_private_payload(self, obj):
        return json_block(mask_secrets(obj.privatePayload))

    @staff_action(
        permission="cancel_runnerjob",
        description="Cancel the selected jobs (and their dependent jobs)",
        refusals=(staff.StaffRefused,),
    )
    def cancel_jobs(self, request, job, *, dry_run):
        return staff.runner_job_cancel(job=job, dry_run=dry_run)

    @staff_action(
        permission="requeue_runnerjob",
        description="Requeue the selected errored or stalled jobs",
        refusals=(staff.StaffRefused,),
    )
    def requeue_jobs(self, request, job, *, dry_run):
        return staff.runner_job_requeue(job=job, dry_run=dry_run)

    @bulk_action(
        permission="purge_runnerjob",
        description="Delete the selected finished jobs",
        preview=lambda jobs: [
            "Finished jobs (completed, errored, cancelled) are deleted, by the rule of "
            "prune_runner_jobs: the jobs of a video's served version, or of the version being "
            "made, are kept (its page shows them and their failures), and so is every job of a "
            "transcoding still running.",
            f"Finished among the selection: {bounded_count(staff.runner_jobs_finished(jobs))}"
            f"; unfinished (kept): {bounded_count(staff.runner_jobs_unfinished(jobs))}.",
        ],
    )
    def delete_finished_jobs(self, request, jobs):
        deleted, unfinished, kept = staff.runner_jobs_delete_finished(
            jobs=jobs, keep=video_current_destinations
        )
        return (
            f"{deleted} finished job(s) deleted; kept: {unfinished} unfinished, {kept} finished "
            "of a served or current version or of a running transcoding"
        )


# --- The transcoded side (read-only, for investigations) --------------------------------------


@admin.register(TranscodedVideo)
class TranscodedVideoAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "state", "duration", "directory", "baseFilename", "createdAt")
    list_filter = ("state",)
    search_fields = ("directory",)
    ordering = ("-createdAt",)


@admin.register(TranscodedFile)
class TranscodedFileAdmin(ReadOnlyAdmin):
    list_display = ("filename", "video", "resolution", "fps", "size", "extname", "createdAt")
    list_filter = ("resolution",)
    list_select_related = ("video",)
    search_fields = ("filename",)
    ordering = ("-createdAt",)


@admin.register(TranscodedPlaylist)
class TranscodedPlaylistAdmin(ReadOnlyAdmin):
    list_display = ("playlistFilename", "video", "createdAt")
    list_select_related = ("video",)
    search_fields = ("playlistFilename",)
    ordering = ("-createdAt",)


@admin.register(TranscodingJobInfo)
class TranscodingJobInfoAdmin(ReadOnlyAdmin):
    list_display = ("video", "pendingTranscode", "pendingMove", "pendingTranscript", "updatedAt")
    list_select_related = ("video",)
    ordering = ("-updatedAt",)
