"""One test of "a presigned URL" for the system check and the cache-buster alike."""

from marsha_runner.storage import url_is_signed


def test_signed_urls_are_told_from_plain_ones():
    assert url_is_signed("https://s3.example/b/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=abc")
    assert url_is_signed("https://s3.example/b/k?AWSAccessKeyId=a&Signature=abc&Expires=9")
    assert not url_is_signed("https://cdn.example/vod/x/master.m3u8?v=809ba684b0c4")
    assert not url_is_signed("/videos/vod/x/master.m3u8")
    # a path that merely contains the word is not a signature
    assert not url_is_signed("https://cdn.example/Signature=abc/master.m3u8")
