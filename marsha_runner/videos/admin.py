"""A basic admin for videos (the staff admin on top may replace it)."""

from django.contrib import admin

from .models import Video


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "upload_state",
        "transcode_pipeline",
        "storage_location",
        "created_on",
    )
    list_filter = ("upload_state", "transcode_pipeline", "storage_location")
    search_fields = ("title", "id")
    readonly_fields = ("id", "created_on", "updated_on")
