"""Staff's view of the subtitle tracks (transcripts): a read-only list with filters, and the
table of a video's tracks on its page.

A track is written by the transcription flow only (``operations.transcription``): staff act
through the video's Transcribe action and the runner job's cancel and requeue.
"""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from marsha_runner.admin_kit import ReadOnlyAdmin, uuid_or_text_search
from marsha_runner.storage import storage_public_url, video_storage

from .models import SubtitleTrack


def subtitle_track_vtt_link(track: SubtitleTrack):
    """The VTT of a ready track (the video storage holds every transcript), else "-"."""
    if not track.key:
        return "-"
    url = storage_public_url(video_storage(), track.key)
    return format_html('<a href="{}" target="_blank" rel="noopener">VTT</a>', url)


def subtitle_track_job_link(track: SubtitleTrack):
    """The runner jobs list searched by the job's uuid (empty once the job is pruned)."""
    url = reverse("admin:runners_runnerjob_changelist") + "?" + urlencode({"q": track.job_uuid})
    return format_html('<a href="{}">{}</a>', url, str(track.job_uuid)[:8])


def subtitle_tracks_table(video):
    """The tracks of every version of ``video``, newest first, for its admin page."""
    tracks = list(video.subtitle_tracks.order_by("-created_on")[:50])
    if not tracks:
        return "no subtitle track"
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                track.stamp,
                "served" if track.stamp == video.active_stamp else "other version",
                track.language or "-",
                track.state,
                track.error_reason or "",
                subtitle_track_vtt_link(track),
                subtitle_track_job_link(track),
            )
            for track in tracks
        ),
    )
    return format_html(
        '<table id="subtitle-tracks"><thead><tr><th>stamp</th><th>version</th>'
        "<th>language</th><th>state</th><th>reason</th><th>file</th><th>job</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(SubtitleTrack)
class SubtitleTrackAdmin(ReadOnlyAdmin):
    """Tracks are made by Transcribe: staff read them."""

    list_display = (
        "video_link",
        "stamp",
        "language",
        "state",
        "error_reason",
        "vtt",
        "job",
        "created_on",
        "updated_on",
    )
    list_filter = ("state", "language")
    list_select_related = ("video",)
    search_fields = ("video__title",)
    search_help_text = "A video id, a job uuid, or words of the video's title."
    ordering = ("-created_on",)
    fields = list_display
    readonly_fields = list_display

    def get_search_results(self, request, queryset, search_term):
        return uuid_or_text_search(
            queryset,
            search_term,
            by_uuid=lambda value, _term: queryset.filter(Q(video_id=value) | Q(job_uuid=value)),
            by_text=lambda term: queryset.filter(video__title__icontains=term),
        )

    @admin.display(description="video", ordering="video__title")
    def video_link(self, track):
        url = reverse("admin:videos_video_change", args=[track.video_id])
        return format_html('<a href="{}">{}</a>', url, track.video.title)

    @admin.display(description="file")
    def vtt(self, track):
        return subtitle_track_vtt_link(track)

    @admin.display(description="runner job")
    def job(self, track):
        return subtitle_track_job_link(track)
