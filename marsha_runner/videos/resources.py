"""Import/export of videos (django-import-export): every column out, only titles in.

An import renames existing videos and does nothing else: a row with an unknown id is refused
naming it (videos come from the API only); every other column is read to compare, never
written. A row whose other columns differ is refused: "changed since the export" with the
values then and now when the video changed after the export (its ``updated_on`` moved),
else the column edited by hand is named (those change through the services only).
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
        if instance._state.adding:
            raise ValidationError(
                {"id": f"no such video {row.get('id')!r}: videos are created through the API; "
                       "an import only renames existing ones"}
            )  # fmt: skip
        differing = {}
        for name in PROTECTED:
            if name in row:
                value = self.fields[name].clean(row)
                if not _same(getattr(instance, name), value):
                    differing[name] = (value, getattr(instance, name))
        if differing:
            raise ValidationError(_refusal(differing))
        self.import_field(self.fields["title"], instance, row, **kwargs)


def _refusal(differing: dict) -> dict:
    """Why a row is refused: stale (the video changed since the export) or edited by hand."""
    if "updated_on" in differing:
        then, now = differing["updated_on"]
        values = "; ".join(
            f"{name}: {_shown(was)} in the export, {_shown(is_now)} now"
            for name, (was, is_now) in differing.items()
        )
        return {
            "updated_on": f"The video changed since the export ({values}): export again and "
            "redo the renaming on the fresh file."
        }
    return {
        name: "Changes only through the admin actions (the services), not by import."
        for name in differing
    }


def _shown(value) -> str:
    return "-" if value in (None, "", [], {}) else str(value)
