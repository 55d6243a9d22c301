"""A small PeerTube runner for tests, speaking the protocol as observed on the wire.

What it relies on is in docs/design.md#runner-protocol.

Like peertube-runner 0.0.16: register (or a seeded runner token), socket.io WebSocket on
``/runners`` with auth ``{runnerToken}`` reacting to ``available-jobs``, ``jobs/request``,
``accept``, POST to the job's ``videoFileUrl`` following a 301/302/303 as a bare GET,
``update`` with progress, a real ffmpeg HLS fMP4 transcode (single file + byte-range playlist)
to the job's resolution and fps, then a multipart ``success``. ``video-transcription`` jobs are
transcribed with faster-whisper (``whisper.py``) and sent like peertube-runner's
``processVideoTranscription``: an ``update`` without progress, then ``success`` with
``payload[inputLanguage]`` and the ``payload[vttFile]`` upload; media without audio is an
``error`` with peertube-runner's message. Every status is asserted the
way the real runner asserts it (200 register/request/accept, 204 the others).

Also like peertube-runner: the source is fetched with a JSON body; up to ``concurrency`` jobs
(2 by default) run at once; a job that fails (ffmpeg, download, a refused success) is reported
with ``error`` and its message, and the runner goes on. It picks jobs by peertube-runner's own
rule (``check_available_jobs``, apps/peertube-runner/src/server/server.ts): at start, on each
ping and when one of its jobs ends it asks ``jobs/request`` and accepts the **first** supported
job of the list, one per check; after a successful accept it checks again 2.5 s later while a
slot is free; after a ``runner_job_not_in_pending_state`` refusal it waits for the next ping or
the end of one of its own jobs; a ping arriving during a check is dropped. Never on a timer.

    client = RunnerClient(live_server_url, runner_token)
    done = client.run_until_idle(timeout=120)
    client.ffmpeg_seconds, client.whisper_seconds, client.failed, client.max_in_flight
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from marsha_runner.devrunner.calls import RunnerCalls, RunnerProtocolError
from marsha_runner.devrunner.whisper import (
    TranscriptionFailed,
    whisper_available,
    whisper_transcribe,
)

logger = logging.getLogger(__name__)

HLS_JOB = "vod-hls-transcoding"
TRANSCRIPTION_JOB = "video-transcription"
CONCURRENCY = 2  # peertube-runner's default (--concurrency)
RECHECK_AFTER_ACCEPT = 2.5  # peertube-runner's wait(2500) after a check that found a job
# The language sent with a transcription: the one whisper detected, unless a protocol test
# overrides it (another code, or None to send none).
DETECTED = "detected"


def runner_job_types(whisper_model: str | None = None) -> list[str]:
    """What this runner can do: HLS, and transcription when faster-whisper and a model are
    installed (the dev extra)."""
    return [HLS_JOB, TRANSCRIPTION_JOB] if whisper_available(whisper_model) else [HLS_JOB]


class JobFailed(RuntimeError):
    """The job could not be done here (ffmpeg failed): the runner reports it with ``error``."""


class RunnerClient(RunnerCalls):
    """One runner: HTTP with ``requests`` (``RunnerCalls``), discovery with socket.io, work with
    ffmpeg and faster-whisper."""

    def __init__(
        self,
        base_url: str,
        runner_token: str | None = None,
        *,
        registration_token: str | None = None,
        name: str | None = None,
        job_types=None,
        workdir: str | Path | None = None,
        session: requests.Session | None = None,
        http_timeout: float = 60,
        transcript_language: str | None = DETECTED,
        whisper_model: str | None = None,
        concurrency: int = CONCURRENCY,
        outage_tolerance: float = 300,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1.")
        super().__init__(
            base_url,
            runner_token,
            session=session,
            http_timeout=http_timeout,
            outage_tolerance=outage_tolerance,
        )
        self.transcript_language = transcript_language
        self.whisper_model = whisper_model  # None: the bundled tiny.en (whisper.py)
        self.concurrency = concurrency
        self.job_types = list(job_types or runner_job_types(whisper_model))
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="runner-client-"))
        self.pings = 0
        self._ping = threading.Event()
        self._sio = None
        self.ffmpeg_seconds = 0.0
        self.whisper_seconds = 0.0  # transcription work, model loaded
        self.transcripts: list = []  # whisper.Transcript of each transcription done
        self.failed: list[tuple[dict, str]] = []  # (job, message) this runner reported
        self.max_in_flight = 0  # the most jobs this runner held at once
        self.refused = 0  # accepts refused with runner_job_not_in_pending_state
        self.pings_dropped = 0  # pings that came during a check (the runner ignores them)
        # [accepted, finished] wall-clock times of each job held (a busy slot), for the benches
        self.slots: list[list[float | None]] = []
        self._checking = False
        self._wake = threading.Event()  # a ping, a job ending: the loop looks again
        if runner_token is None:  # last: registering uses the state above
            if not registration_token:
                raise ValueError("Give a runner token or a registration token.")
            self.register(registration_token, name or f"test-runner-{uuid.uuid4().hex[:8]}")

    # --- ffmpeg -------------------------------------------------------------------------------

    def transcode(self, job: dict, source: Path, outdir: Path) -> tuple[Path, Path]:
        """HLS fMP4 in one file + byte-range playlist, as PeerTube's runner writes them."""
        output = job["payload"]["output"]
        resolution, fps = int(output["resolution"]), output["fps"]
        stem = f"{uuid.uuid4()}-{resolution}"
        video_file, playlist_file = outdir / f"{stem}-fragmented.mp4", outdir / f"{stem}.m3u8"
        # Landscape: height = resolution, even width (portrait: the other way round).
        scale = f"scale=w='if(gte(iw,ih),-2,{resolution})':h='if(gte(iw,ih),{resolution},-2)'"
        args = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vf", scale]
        if fps and fps > 0:
            args += ["-r", str(fps)]
        args += [
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-profile:v", "high", "-c:a", "aac", "-b:a", "128k",
            "-f", "hls", "-hls_time", "4", "-hls_list_size", "0", "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
            "-hls_segment_filename", str(video_file), str(playlist_file),
        ]  # fmt: skip
        started = time.monotonic()
        try:
            done = subprocess.run(args, capture_output=True, timeout=600)  # noqa: S603
        except subprocess.TimeoutExpired as err:
            raise JobFailed("ffmpeg timed out after 600 s") from err
        finally:
            with self._lock:
                self.ffmpeg_seconds += time.monotonic() - started
        if done.returncode != 0:
            raise JobFailed(f"ffmpeg failed: {done.stderr.decode(errors='replace')[-800:]}")
        return video_file, playlist_file

    def transcribe(self, job: dict, source: Path, outdir: Path) -> tuple[Path, str | None]:
        """The job's media into a WebVTT with faster-whisper (the job's language when its
        payload names one, else detected); (the VTT, the language to send)."""
        try:
            transcript = whisper_transcribe(
                media=source,
                vtt=outdir / f"{uuid.uuid4()}.vtt",
                model=self.whisper_model,
                language=(job.get("payload") or {}).get("language"),
            )
        except TranscriptionFailed as err:
            raise JobFailed(str(err)) from err
        with self._lock:
            self.whisper_seconds += transcript.seconds
            self.transcripts.append(transcript)
        language = self.transcript_language
        return transcript.vtt, transcript.language if language == DETECTED else language

    def process(self, job: dict) -> bool:
        """Download, report progress, transcode (or transcribe), send the result: True when it
        succeeded.

        A failure (ffmpeg, the download, a refused result) is reported with ``error`` and its
        message, as peertube-runner does, so the job is retried elsewhere; False then. Only a
        failed ``error`` call raises (the server refused the runner's own report).
        """
        outdir = Path(tempfile.mkdtemp(dir=self.workdir))
        try:
            source = self.download(job, outdir / "source")
            if job.get("type") == TRANSCRIPTION_JOB:
                self.update(job, progress=None)
                self.success_transcription(job, *self.transcribe(job, source, outdir))
                return True
            self.update(job, progress=10)
            video_file, playlist_file = self.transcode(job, source, outdir)
            self.update(job, progress=90)
            self.success(job, video_file, playlist_file)
            return True
        except (
            JobFailed,
            RunnerProtocolError,
            OSError,
            subprocess.SubprocessError,
            requests.RequestException,
        ) as err:
            message = str(err) or type(err).__name__
            logger.warning("Job %s failed: %s", job["uuid"], message[:300])
            self.error(job, message)
            self.failed.append((job, message))
            return False

    # --- socket.io ----------------------------------------------------------------------------

    def connect(self, timeout: float = 10) -> None:
        """WebSocket-only socket.io on /runners, as the runner does."""
        import socketio

        sio = socketio.Client(reconnection=False)
        sio.on("available-jobs", self._on_ping, namespace="/runners")
        sio.connect(
            self.base_url,
            namespaces=["/runners"],
            transports=["websocket"],
            auth={"runnerToken": self.runner_token},
            socketio_path="socket.io",
            wait_timeout=timeout,
        )
        self._sio = sio

    @property
    def connected(self) -> bool:
        return self._sio is not None and self._sio.connected

    def _on_ping(self, *args):
        with self._lock:
            if self._checking:  # peertube-runner: `if (this.checkingAvailableJobs) return`
                self.pings_dropped += 1
                return
            self.pings += 1
        self._ping.set()
        self._wake.set()

    def wait_ping(self, timeout: float) -> bool:
        """Wait for an ``available-jobs`` ping (consumes it)."""
        got = self._ping.wait(timeout)
        self._ping.clear()
        return got

    def disconnect(self) -> None:
        if self._sio is not None:
            self._sio.disconnect()
            self._sio = None

    # --- the runner's loop --------------------------------------------------------------------

    def check_available_jobs(self, pool: ThreadPoolExecutor, in_flight: dict, process=None):
        """peertube-runner's ``checkAvailableJobs`` for one server: ask ``jobs/request``, take
        the first supported job of the list and, if a slot is free, accept and start it
        (``process(job)``, in ``pool``; ``in_flight`` maps its future to the job).

        True when the runner checks again ``RECHECK_AFTER_ACCEPT`` s later: a job was accepted
        and a slot is still free. A ``runner_job_not_in_pending_state`` refusal gives False:
        the runner then waits for the next ping or the end of one of its own jobs (this is the
        flaw of issue 18: every runner gets the same list, all but one lose the race).
        """
        with self._lock:
            if self._checking:
                return False
            self._checking = True
        had_job = False
        try:
            offered = self.request_jobs()
            first = next((job for job in offered if job.get("type") in self.job_types), None)
            if first is not None and len(in_flight) < self.concurrency:
                job = self.accept(first["uuid"])
                if job is None:
                    with self._lock:
                        self.refused += 1
                else:
                    had_job = True
                    self._start(pool, in_flight, job, process or self.process)
            elif first is not None:
                had_job = True  # offered, but every slot is busy: no accept, no re-check
        finally:
            with self._lock:
                self._checking = False
        return had_job and len(in_flight) < self.concurrency

    def _start(self, pool: ThreadPoolExecutor, in_flight: dict, job: dict, process) -> None:
        slot = [time.time(), None]

        def done(_future):
            slot[1] = time.time()
            self._wake.set()

        future = pool.submit(process, job)
        in_flight[future] = job
        with self._lock:
            self.slots.append(slot)
            self.max_in_flight = max(self.max_in_flight, len(in_flight))
        future.add_done_callback(done)

    def run_until_idle(self, timeout: float = 300, idle: float = 3, socket: bool = True) -> int:
        """Work like the runner (``check_available_jobs`` at start, on each ping, when one of
        its jobs ends and 2.5 s after a check that took a job, up to ``concurrency`` jobs at
        once) until no job runs, no re-check is due and no ping comes for ``idle`` seconds.
        Returns the number of jobs that succeeded (failures are reported to the server and
        listed in ``failed``); raises TimeoutError past ``timeout``."""
        if socket and self._sio is None:
            self.connect()
        deadline = time.monotonic() + timeout
        total = 0
        in_flight: dict = {}
        recheck_at = None
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="runner-job")
        try:
            check = True  # at start
            while True:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"Runner still busy after {timeout}s ({total} jobs).")
                self._wake.clear()
                for future in [future for future in in_flight if future.done()]:
                    in_flight.pop(future)
                    total += future.result()  # a failed error report raises here
                    check = True  # the end of one of its jobs
                if self._ping.is_set():
                    self._ping.clear()
                    check = True
                if recheck_at is not None and now >= recheck_at:
                    recheck_at, check = None, True
                if check:
                    check = False
                    if self.check_available_jobs(pool, in_flight):
                        recheck_at = time.monotonic() + RECHECK_AFTER_ACCEPT
                    continue
                if in_flight or recheck_at is not None:
                    wake_in = recheck_at - now if recheck_at is not None else 1.0
                    self._wake.wait(max(0.0, min(wake_in, 1.0, deadline - now)))
                elif not self._wake.wait(min(idle, max(0.0, deadline - now))):
                    return total
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if socket:
                self.disconnect()
