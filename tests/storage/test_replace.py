"""storage_replace on a disk: concurrent writers of one key (two processes concluding one
transcoding write the same master.m3u8) must never fail nor leave another name."""

import os
import threading

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from marsha_runner.storage import storage_replace


def test_concurrent_replacements_of_one_key_all_succeed(tmp_path):
    storage = FileSystemStorage(location=tmp_path, file_permissions_mode=0o644)
    key = "vod/abc/video/1/master.m3u8"
    errors = []
    start = threading.Barrier(8)

    def writer(n):
        start.wait()
        for i in range(50):
            try:
                storage_replace(storage, key, ContentFile(f"#EXTM3U {n} {i}\n".encode()))
            except Exception as err:  # noqa: BLE001 - the test counts every failure
                errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert os.listdir(tmp_path / "vod/abc/video/1") == ["master.m3u8"]  # no temp file left
    assert storage.open(key).read().startswith(b"#EXTM3U ")
    assert oct(os.stat(storage.path(key)).st_mode & 0o777) == "0o644"
