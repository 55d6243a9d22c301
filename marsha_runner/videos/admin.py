"""Staff admin of our videos: read-only but the title; every change goes through an action.

Each action is a thin shell over a service of ``services`` (the same functions the API,
tasks and commands use); ``admin_kit`` gives the confirmation page, the per-object messages,
the log entries and the permission check.
"""

from functools import partial

from django.contrib import admin
from django.contrib.admin.models import CHANGE
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, JSON, XLSX

from marsha_runner.admin_kit import (
    StaffAdmin,
    bulk_action,
    human_size,
    rolled_back,
    staff_action,
    uuid_or_text_search,
)
from marsha_runner.migration.staff import MigrationRefused, video_migration_enqueue
from marsha_runner.operations.transcription import TranscriptionRefused, video_transcribe
from marsha_runner.runners.naming import runner_job_resolution_label
from marsha_runner.runners.selectors import runner_jobs_of_destination

from .constants import StorageLocation, storage_location_label
from .models import Video
from .resources import VideoResource
from .staff_bulk import videos_bulk_enqueue, videos_bulk_preview
from .staff_transcoding import (
    KEEPS_SERVING,
    LATER,
    video_retranscode,
    video_switch_to_peertube,
    video_transcode_missing,
)
from .subtitles_admin import subtitle_tracks_table
from .transitions import VideoRefused


def migration_progress_url(*, video_id) -> str | None:
    """The migration app's admin list of one video's progress rows, when it has one (a model
    of that app with a ``video`` field, registered in the admin); None otherwise."""
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label == "migration" and any(f.name == "video" for f in opts.fields):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            return f"{url}?video__id__exact={video_id}"
    return None


LOCAL = "local"


class LocationFilter(admin.SimpleListFilter):
    """Every location as the list shows it, the local disk (null) included."""

    title = "storage location"
    parameter_name = "storage_location"

    def lookups(self, request, model_admin):
        return [(LOCAL, storage_location_label(None))] + [
            (value, label) for value, label in StorageLocation.choices
        ]

    def queryset(self, request, queryset):
        if self.value() == LOCAL:
            return queryset.filter(storage_location__isnull=True)
        if self.value():
            return queryset.filter(storage_location=self.value())
        return queryset


class HasErrorFilter(admin.SimpleListFilter):
    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(upload_error_reason="")
        if self.value() == "no":
            return queryset.filter(upload_error_reason="")
        return queryset


# A staff transcoding of videos (re-trigger, missing renditions, pipeline switch), one by one or
# in bulk: refused with the reason, done later, the served version kept meanwhile. One
# declaration of that policy for the six actions.
video_transcoding_action = partial(
    staff_action, refusals=(VideoRefused,), notes=(LATER, KEEPS_SERVING)
)
video_transcoding_bulk_action = partial(bulk_action, preview=videos_bulk_preview, verb_flag=CHANGE)


@admin.register(Video)
class VideoAdmin(ImportExportMixin, StaffAdmin):
    resource_classes = [VideoResource]
    export_formats = [CSV, JSON, XLSX]
    import_formats = [CSV]
    list_display = (
        "thumbnail",
        "title",
        "upload_state",
        "transcode_pipeline",
        "location",
        "resolution_list",
        "duration_display",
        "size_display",
        "created_on",
        "updated_on",
    )
    list_display_links = ("title",)
    list_filter = ("upload_state", "transcode_pipeline", LocationFilter, HasErrorFilter)
    search_fields = ("title",)
    search_help_text = "A video id, or words of its title."
    ordering = ("-created_on",)
    fields = (
        "id",
        "title",
        "upload_state",
        "upload_error_code",
        "upload_error_reason",
        "upload_error_detail",
        "transcode_pipeline",
        "location",
        "resolution_list",
        "duration_display",
        "size_display",
        "uploaded_on",
        "processing_stamp",
        "launched_stamp",
        "url_links",
        "player",
        "subtitle_tracks",
        "job_tree",
        "created_on",
        "updated_on",
    )
    readonly_fields = tuple(f for f in fields if f != "title")
    actions = (
        "retranscode",
        "transcode_missing",
        "switch_to_peertube",
        "migrate_to_scaleway",
        "transcribe",
        "bulk_retranscode",
        "bulk_transcode_missing",
        "bulk_switch_to_peertube",
    )

    class Media:
        js = ("videos/vendor/hls.js/hls.min.js", "videos/admin/player.js")

    def has_add_permission(self, request):
        return False  # videos are created through the API

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        return uuid_or_text_search(
            queryset,
            search_term,
            by_uuid=lambda value, term: queryset.filter(Q(id=value) | Q(title__icontains=term)),
            by_text=lambda term: queryset.filter(title__icontains=term),
        )

    @admin.display(description="")
    def thumbnail(self, obj):
        thumbnails = (obj.urls or {}).get("thumbnails") or {}
        if not thumbnails:
            return "-"
        url = thumbnails[max(thumbnails, key=lambda r: int(r) if str(r).isdigit() else 0)]
        return format_html('<img src="{}" alt="" style="height: 36px">', url)

    @admin.display(description="storage location", ordering="storage_location")
    def location(self, obj):
        return storage_location_label(obj.storage_location)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The video's actions as buttons on its page (the same actions, confirmation page
        included), a link to its jobs, and to its migration's progress."""
        actions = self.get_actions(request)
        extra_context = {
            **(extra_context or {}),
            "object_actions": [
                (name, actions[name][2])
                for name in self.actions
                if name in actions and not name.startswith("bulk_")  # one video: its own
            ],
            "jobs_url": reverse("admin:runners_runnerjob_changelist") + f"?q={object_id}",
            "migration_url": migration_progress_url(video_id=object_id),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="resolutions")
    def resolution_list(self, obj):
        return ", ".join(f"{r}p" for r in obj.resolutions or []) or "-"

    @admin.display(description="duration", ordering="duration")
    def duration_display(self, obj):
        if obj.duration is None:
            return "-"
        minutes, seconds = divmod(int(round(obj.duration)), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"

    @admin.display(description="size", ordering="size")
    def size_display(self, obj):
        return human_size(obj.size)

    @admin.display(description="urls")
    def url_links(self, obj):
        links = []

        def walk(prefix, value):
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix} {key}".strip(), item)
            elif isinstance(value, str) and value:
                links.append((prefix, value, value))

        walk("", obj.urls or {})
        if not links:
            return "-"
        return format_html_join(
            "", '<div>{}: <a href="{}" target="_blank" rel="noopener">{}</a></div>', links
        )

    @admin.display(description="player")
    def player(self, obj):
        hls = ((obj.urls or {}).get("manifests") or {}).get("hls")
        if not hls:
            return "-"
        return format_html(
            '<video id="hls-player" controls muted width="480" data-src="{}"></video>', hls
        )

    @admin.display(description="subtitle tracks")
    def subtitle_tracks(self, obj):
        return subtitle_tracks_table(obj)

    @admin.display(description="jobs of the version being transcoded")
    def job_tree(self, obj):
        stamp = obj.processing_stamp or obj.active_stamp
        if not stamp:
            return "-"
        jobs = list(runner_jobs_of_destination(destination=obj.output_prefix(stamp)))
        if not jobs:
            return "no runner job"
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    "↳" if job.dependsOnRunnerJob_id else "",
                    reverse("admin:runners_runnerjob_change", args=[job.pk]),
                    job.type,
                    job.get_state_display(),
                    runner_job_resolution_label(job),
                    "-" if job.progress is None else f"{job.progress:.0f}%",
                    job.runner.name if job.runner else "-",
                    job.failures,
                    job.error or "",
                )
                for job in jobs
            ),
        )
        return format_html(
            '<table id="job-tree"><thead><tr><th></th><th>type</th><th>state</th>'
            "<th>resolution</th><th>progress</th><th>runner</th><th>failures</th>"
            "<th>error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- Actions: thin shells over the services -----------------------------------------------

    @video_transcoding_action(permission="retranscode_video", description="Re-trigger transcoding")
    def retranscode(self, request, video, *, dry_run):
        return video_retranscode(video_id=video.id, dry_run=dry_run)

    @video_transcoding_action(
        permission="transcode_missing_video", description="Transcode missing renditions"
    )
    def transcode_missing(self, request, video, *, dry_run):
        return video_transcode_missing(video_id=video.id, dry_run=dry_run)

    @video_transcoding_action(
        permission="switch_pipeline_video", description="Switch to the PEERTUBE pipeline"
    )
    def switch_to_peertube(self, request, video, *, dry_run):
        return video_switch_to_peertube(video_id=video.id, dry_run=dry_run)

    # Any number of videos (issue 18): batches on Celery's staff queue, after user uploads.

    @video_transcoding_bulk_action(
        permission="retranscode_video",
        description="Re-trigger transcoding (any number, in the background)",
    )
    def bulk_retranscode(self, request, queryset):
        return videos_bulk_enqueue(action="retranscode", queryset=queryset)

    @video_transcoding_bulk_action(
        permission="transcode_missing_video",
        description="Transcode missing renditions (any number, in the background)",
    )
    def bulk_transcode_missing(self, request, queryset):
        return videos_bulk_enqueue(action="transcode_missing", queryset=queryset)

    @video_transcoding_bulk_action(
        permission="switch_pipeline_video",
        description="Switch to the PEERTUBE pipeline (any number, in the background)",
    )
    def bulk_switch_to_peertube(self, request, queryset):
        return videos_bulk_enqueue(action="switch_to_peertube", queryset=queryset)

    @staff_action(
        permission="migrate_video",
        description="Migrate storage to Scaleway",
        refusals=(MigrationRefused,),
    )
    def migrate_to_scaleway(self, request, video, *, dry_run):
        return video_migration_enqueue(video=video, dry_run=dry_run)

    @staff_action(
        permission="transcribe_video",
        description="Transcribe",
        refusals=(TranscriptionRefused,),
    )
    def transcribe(self, request, video, *, dry_run):
        if dry_run:
            rolled_back(lambda: video_transcribe(video=video, dry_run=True))
            return "will be transcribed (a transcription job for the runners)"
        track = video_transcribe(video=video)
        return f"transcription job {track.job_uuid} started"
