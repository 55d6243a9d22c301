"""Import/export of videos (django-import-export): every column out, only titles in.

An import may create a video (pending, with its title) or rename one; a row that would change
its state, urls, pipeline, location or stamps is refused with the field named: those change
through the services only.
"""

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from .models import Video

# Microseconds and UTC, so an export imported back unchanged compares equal.
DATETIME = widgets.DateTimeWidget(format="%Y-%m-%dT%H:%M:%S.%f")
PROTECTED = (
    "upload_state",
    "upload_error_reason",
    "transcode_pipeline",
    "storage_location",
    "resolutions",
    "duration",
    "size",
    "urls",
    "uploaded_on",
    "processing_stamp",
    "launched_stamp",
    "created_on",
    "updated_on",
)


def _same(before, after) -> bool:
    empty = (None, "", [], {})
    if before in empty and after in empty:
        return True
    return before == after


class VideoResource(resources.ModelResource):
    resolutions = fields.Field(attribute="resolutions", widget=widgets.JSONWidget())
    urls = fields.Field(attribute="urls", widget=widgets.JSONWidget())
    uploaded_on = fields.Field(attribute="uploaded_on", widget=DATETIME)
    created_on = fields.Field(attribute="created_on", widget=DATETIME)
    updated_on = fields.Field(attribute="updated_on", widget=DATETIME)

    class Meta:
        model = Video
        fields = ("id", "title", *PROTECTED)
        import_id_fields = ("id",)
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True

    def skip_row(self, instance, original, row, import_validation_errors=None):
        """An existing video whose row changes nothing is skipped (not saved again)."""
        if import_validation_errors or original is None or instance._state.adding:
            return False
        return all(
            _same(getattr(original, name), getattr(instance, name))
            for name in ("title", *PROTECTED)
        )

    def import_instance(self, instance, row, **kwargs):
        before = {name: getattr(instance, name) for name in PROTECTED}
        super().import_instance(instance, row, **kwargs)
        refused = {
            name: ValidationError(
                "Changes only through the admin actions (the services), not by import."
            )
            for name in PROTECTED
            if name in row and not _same(before[name], getattr(instance, name))
        }
        if refused:
            raise ValidationError(refused)
