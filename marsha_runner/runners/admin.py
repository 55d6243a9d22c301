"""Admin of the library's models, without its secrets.

The library registers its own ModelAdmins, whose list columns and search show registration
and job tokens. They are replaced here: every token is masked (``mask_token``), never listed,
searched or put in a form; runners and tokens are created by ``seed_runner`` or ``register``.
"""

from django.contrib import admin
from django.db.models import Count
from django_peertube_runner_connector import admin as _library_admin  # noqa: F401 (registers first)
from django_peertube_runner_connector.models import (
    Runner,
    RunnerJob,
    RunnerRegistrationToken,
    Video,
    VideoFile,
    VideoJobInfo,
    VideoStreamingPlaylist,
)

for _model in (
    RunnerRegistrationToken,
    Runner,
    RunnerJob,
    Video,
    VideoFile,
    VideoJobInfo,
    VideoStreamingPlaylist,
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def mask_token(value: str | None) -> str:
    """At most the first 4 characters (the library's prefix): enough to tell kinds apart."""
    if not value:
        return "-"
    return f"{value[:4]}…"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the runner protocol only: staff may look and delete, not edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RunnerRegistrationToken)
class RunnerRegistrationTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "masked_token", "runner_count", "createdAt", "updatedAt")
    fields = ("id", "masked_token", "runner_count", "createdAt", "updatedAt")
    readonly_fields = fields
    ordering = ("-createdAt",)

    @admin.display(description="registration token")
    def masked_token(self, obj):
        return mask_token(obj.registrationToken)

    def get_queryset(self, request):
        # One query for the whole list, not one count per row.
        return super().get_queryset(request).annotate(runners=Count("runner"))

    @admin.display(description="runners", ordering="runners")
    def runner_count(self, obj):
        return obj.runners


@admin.register(Runner)
class RunnerAdmin(ReadOnlyAdmin):
    list_display = ("name", "description", "lastContact", "ip", "createdAt", "updatedAt")
    fields = (
        "id",
        "name",
        "description",
        "masked_token",
        "lastContact",
        "ip",
        "registration_token",
        "createdAt",
        "updatedAt",
    )
    readonly_fields = fields
    search_fields = ("name", "description", "ip")
    ordering = ("name",)

    @admin.display(description="runner token")
    def masked_token(self, obj):
        return mask_token(obj.runnerToken)

    @admin.display(description="registration token")
    def registration_token(self, obj):
        return mask_token(obj.runnerRegistrationToken.registrationToken)


@admin.register(RunnerJob)
class RunnerJobAdmin(ReadOnlyAdmin):
    list_display = (
        "uuid",
        "type",
        "state",
        "failures",
        "priority",
        "progress",
        "runner_name",
        "startedAt",
        "finishedAt",
        "createdAt",
    )
    list_filter = ("state", "type")
    list_select_related = ("runner",)
    search_fields = ("uuid", "runner__name")
    ordering = ("-createdAt",)
    fields = (
        "id",
        "uuid",
        "domain",
        "type",
        "state",
        "failures",
        "error",
        "priority",
        "progress",
        "masked_job_token",
        "runner_name",
        "dependsOnRunnerJob",
        "payload",
        "privatePayload",
        "startedAt",
        "finishedAt",
        "createdAt",
        "updatedAt",
    )
    readonly_fields = fields

    @admin.display(description="processing job token")
    def masked_job_token(self, obj):
        return mask_token(obj.processingJobToken)

    @admin.display(description="runner", ordering="runner__name")
    def runner_name(self, obj):
        return obj.runner.name if obj.runner else "-"


@admin.register(Video)
class TranscodedVideoAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "state", "duration", "directory", "baseFilename", "createdAt")
    list_filter = ("state",)
    search_fields = ("uuid", "directory")
    ordering = ("-createdAt",)


@admin.register(VideoFile)
class VideoFileAdmin(ReadOnlyAdmin):
    list_display = ("filename", "video", "resolution", "fps", "size", "extname", "createdAt")
    list_filter = ("resolution",)
    list_select_related = ("video",)
    search_fields = ("filename", "video__uuid")
    ordering = ("-createdAt",)


@admin.register(VideoStreamingPlaylist)
class VideoStreamingPlaylistAdmin(ReadOnlyAdmin):
    list_display = ("playlistFilename", "video", "createdAt")
    list_select_related = ("video",)
    search_fields = ("playlistFilename", "video__uuid")


@admin.register(VideoJobInfo)
class VideoJobInfoAdmin(ReadOnlyAdmin):
    list_display = ("video", "pendingTranscode", "pendingMove", "pendingTranscript", "updatedAt")
    list_select_related = ("video",)
