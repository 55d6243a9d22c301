"""Staff admin of the migration to Scaleway: progress over every worker, and per video.

Read-only: the migration is run by ``migrate_to_scaleway`` (here or fanned out to Celery
workers) and by the videos' "Migrate storage to Scaleway" action; these pages only read the
progress rows every worker writes. A video's page links to ``admin:migration_video_progress``.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from marsha_runner.admin_kit import ReadOnlyAdmin
from marsha_runner.videos.models import Video

from .models import MigrationVideo
from .progress_bar import size_text
from .selectors import migration_progress, migration_progress_of_video


def _progress_lines(progress: dict) -> list[tuple[str, str]]:
    eta = progress["eta_seconds"]
    return [
        ("Videos migrated", f"{progress['migrated']} of {progress['videos']}"),
        ("Running now", str(progress["running"])),
        ("Failed", str(progress["failed"])),
        ("Pending", f"{progress['pending']} ({progress['queued']} queued for workers)"),
        ("Objects (listed videos)", f"{progress['objects_done']} of {progress['objects']}"),
        ("Bytes", f"{size_text(progress['bytes_done'])} of {size_text(progress['bytes'])}"),
        ("Rate (last 5 minutes)", f"{size_text(progress['bytes_per_second'])}/s"),
        ("ETA", f"{eta // 3600} h {eta % 3600 // 60:02d} min" if eta is not None else "unknown"),
    ]


@admin.register(MigrationVideo)
class MigrationVideoAdmin(ReadOnlyAdmin):
    list_display = (
        "video_id", "state", "objects_done", "objects_total", "bytes_done_text", "attempts",
        "updated_on", "reason",
    )  # fmt: skip
    list_filter = ("state",)
    search_fields = ("=video__id",)
    ordering = ("-updated_on",)
    change_list_template = "admin/migration/migrationvideo/change_list.html"
    readonly_fields = [field.name for field in MigrationVideo._meta.fields]

    @admin.display(description="bytes done")
    def bytes_done_text(self, row):
        return f"{size_text(row.bytes_done)} of {size_text(row.bytes_total)}"

    def changelist_view(self, request, extra_context=None):
        progress = migration_progress()
        extra_context = {
            **(extra_context or {}),
            "progress_lines": _progress_lines(progress),
            "last_errors": progress["last_errors"],
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view(self.progress_view)
        return [
            path("video/<uuid:video_id>/", view, name="migration_video_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request, video_id):
        """One video's migration, whether or not it has started (a video page links here)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            progress = migration_progress_of_video(video_id=video_id)
        except Video.DoesNotExist as err:
            raise Http404("No such video.") from err
        context = {
            **self.admin_site.each_context(request),
            "title": f"Migration of video {video_id}",
            "opts": self.model._meta,
            "progress": progress,
            "bytes_done": size_text(progress["bytes_done"]),
            "bytes_total": size_text(progress["bytes"]),
        }
        return TemplateResponse(request, "admin/migration/migrationvideo/progress.html", context)
