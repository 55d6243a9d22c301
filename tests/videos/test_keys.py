"""Storage keys: the Video model builds them, one pattern of each kind reads them back."""

import uuid

from marsha_runner.videos.constants import DESTINATION_RE, SOURCE_KEY_RE
from marsha_runner.videos.models import Video
from marsha_runner.videos.selectors import video_id_of_destination, video_outputs_root

VIDEO_ID = uuid.UUID("2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b")


def test_the_model_builds_every_key_of_a_version():
    video = Video(id=VIDEO_ID)
    assert video.source_dir() == "tmp/2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b/video"
    assert video.source_key(17) == "tmp/2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b/video/17"
    assert video.outputs_root() == "vod/2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b/video/"
    assert video.output_prefix(17) == "vod/2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b/video/17"
    assert (
        video.thumbnail_key(17)
        == "vod/2b1e6f0a-9c1d-4e5f-8a7b-6c5d4e3f2a1b/video/17/thumbnail.jpg"
    )
    assert video_outputs_root(video_id=VIDEO_ID) == video.outputs_root()


def test_the_patterns_read_back_what_the_model_builds_and_nothing_looser():
    video = Video(id=VIDEO_ID)
    assert DESTINATION_RE.match(video.output_prefix(17)).groupdict() == {
        "video_id": str(VIDEO_ID),
        "stamp": "17",
    }
    assert SOURCE_KEY_RE.match(video.source_key(17)).groupdict() == {
        "video_id": str(VIDEO_ID),
        "stamp": "17",
    }
    assert video_id_of_destination(video.output_prefix(17)) == str(VIDEO_ID)
    # 36 characters of hex and dashes are not a uuid (the looser of the two old patterns
    # took them): no video is looked up for such a destination.
    assert video_id_of_destination("vod/" + "-" * 36 + "/video/17") is None
    assert video_id_of_destination("vod/" + "a" * 36 + "/video/17") is None
    assert SOURCE_KEY_RE.match("tmp/" + "-" * 36 + "/video/17") is None
