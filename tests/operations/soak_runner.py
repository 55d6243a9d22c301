"""One runner process of the soak test: ``python -m tests.operations.soak_runner URL TOKEN DIR``.

The runner client's own steps (request, accept, download, update, ffmpeg, success), one job at
a time, talking to the harness on stdin/stdout: after the download and the first progress
update it prints ``WORKING <job>`` and waits for ``go``; the harness answers ``go`` or kills
this process with SIGKILL (a runner dying mid-job: no abort, no error, nothing more). Prints
``DONE <job> <resolution>`` when the server accepted the result (204), ``REFUSED <job>`` when
it did not (the job was taken back meanwhile). Asks for jobs at start, after each job, on
each ``available-jobs`` ping and, so a lost ping cannot stall the harness, every second.
"""

import sys
import tempfile
from pathlib import Path

from marsha_runner.devrunner.calls import RunnerProtocolError
from marsha_runner.devrunner.client import RunnerClient


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def work(client: RunnerClient, job: dict) -> None:
    outdir = Path(tempfile.mkdtemp(dir=client.workdir))
    try:
        source = client.download(job, outdir / "source")
        client.update(job, progress=10)
        say(f"WORKING {job['uuid']}")
        if sys.stdin.readline().strip() != "go":
            sys.exit(0)
        video_file, playlist_file = client.transcode(job, source, outdir)
        client.update(job, progress=90)
        client.success(job, video_file, playlist_file)
    except RunnerProtocolError:
        say(f"REFUSED {job['uuid']}")
        return
    say(f"DONE {job['uuid']} {job['payload']['output']['resolution']}")


def main(url: str, token: str, workdir: str) -> None:
    client = RunnerClient(url, token, workdir=workdir, concurrency=1)
    client.connect()
    say("READY")
    try:
        while True:
            taken = None
            for available in client.request_jobs():
                taken = client.accept(available["uuid"])
                if taken is not None:
                    break
            if taken is not None:
                work(client, taken)
                continue
            client.wait_ping(1.0)
    finally:
        client.disconnect()


if __name__ == "__main__":
    main(*sys.argv[1:4])
