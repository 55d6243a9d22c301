"""The command's progress display: tqdm with bytes and rate on a TTY, a line per video
otherwise. A shell helper (no service imports it)."""

import sys
import threading

from tqdm import tqdm

from .pools import Progress


def size_text(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return str(count)


class ProgressBar:
    """One bar over every video in flight (several are, at once); thread-safe."""

    def __init__(self, stream, *, quiet: bool):
        self.stream, self.quiet = stream, quiet
        self.bar = None
        self.lock = threading.Lock()
        self.progress = Progress(on_video=self.video, on_bytes=self.bytes, on_done=self.done)

    def video(self, video_id, objects, size):
        if self.quiet:
            return
        with self.lock:
            if sys.stderr.isatty():
                if self.bar is None:
                    self.bar = tqdm(
                        total=0, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
                    )
                self.bar.total += size
                self.bar.refresh()
            else:
                self.stream.write(f"{video_id}: {objects} objects, {size_text(size)}")

    def bytes(self, count):
        if self.bar is not None:
            with self.lock:
                self.bar.update(count)

    def done(self, result):
        if self.quiet:
            return
        line = (
            f"{result.video_id}: {result.status}"
            f"{' (' + result.reason + ')' if result.reason else ''}; "
            f"{result.objects_copied} copied, {result.objects_skipped} already verified"
        )
        with self.lock:
            if self.bar is not None:
                self.bar.write(line, file=sys.stderr)
            else:
                self.stream.write(line)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
