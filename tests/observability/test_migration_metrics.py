"""Migration throughput in /metrics: objects and bytes copied, as the migration's own rows
record them (filesystem → filesystem, the embedded default)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum

from marsha_runner.migration.models import MigrationObject
from marsha_runner.videos.constants import StorageLocation, TranscodePipeline
from marsha_runner.videos.models import Video
from tests.observability.metrics_scrape import delta, parse

pytestmark = [pytest.mark.ffmpeg, pytest.mark.django_db(transaction=True)]


def scrape(client) -> dict:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return parse(response.content.decode())


def test_objects_and_bytes_copied_are_counted(client, videos_root, legacy_root, settings):
    settings.DEBUG = True  # seed_legacy_videos is a dev tool
    call_command("seed_legacy_videos", "--count", "2", "--seconds", "1", stdout=StringIO())
    before = scrape(client)
    call_command("migrate_to_scaleway", "--json", stdout=StringIO())
    after = scrape(client)

    assert not Video.objects.filter(
        transcode_pipeline=TranscodePipeline.AWS, storage_location=StorageLocation.AWS
    ).exists()
    verified = MigrationObject.objects.filter(state=MigrationObject.State.VERIFIED)
    assert verified.count() > 20
    copied = delta(after, before, "marsha_runner_migration_objects_total", outcome="copied")
    assert copied == verified.count()
    assert (
        delta(after, before, "marsha_runner_migration_bytes_total")
        == verified.aggregate(total=Sum("size"))["total"]
    )
    assert delta(after, before, "marsha_runner_migration_objects_total", outcome="failed") == 0
