"""Export of runner jobs and runners (django-import-export): no token, no payload URL."""

from import_export import fields, resources

from .models import Runner, RunnerJob
from .naming import runner_job_resolution
from .selectors import runner_job_video_uuid


class RunnerJobResource(resources.ModelResource):
    runner = fields.Field(attribute="runner__name", column_name="runner")
    state = fields.Field(column_name="state")
    video_uuid = fields.Field(column_name="transcoded_video_uuid")
    resolution = fields.Field(column_name="resolution")

    class Meta:
        model = RunnerJob
        fields = (
            "uuid",
            "type",
            "state",
            "video_uuid",
            "resolution",
            "runner",
            "failures",
            "error",
            "priority",
            "progress",
            "startedAt",
            "finishedAt",
            "createdAt",
            "updatedAt",
        )
        export_order = fields

    def dehydrate_state(self, job):
        return job.get_state_display()

    def dehydrate_video_uuid(self, job):
        return runner_job_video_uuid(job) or ""

    def dehydrate_resolution(self, job):
        return runner_job_resolution(job) or ""


class RunnerResource(resources.ModelResource):
    class Meta:
        model = Runner
        fields = ("name", "description", "ip", "lastContact", "createdAt", "updatedAt")
        export_order = fields
