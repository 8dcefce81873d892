"""The worker's loop: claim a job, fetch its input, run solve-field while renewing the lease, report, clean up."""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from . import runner
from .client import LostJob, PortalClient, PortalError

log = logging.getLogger("solve_worker")


class Worker:
    def __init__(self, client: PortalClient, name: str, scratch_root: Path, poll_seconds: float = 0.25) -> None:
        self.client = client
        self.name = name
        self.scratch_root = scratch_root
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def stop(self, *_args) -> None:
        """Finish nothing more: the current solve is killed, its job's lease runs out and it runs elsewhere."""
        self.stopping.set()

    def run_forever(self, max_jobs: int | None = None) -> None:
        done = 0
        backoff = self.poll_seconds
        while not self.stopping.is_set() and (max_jobs is None or done < max_jobs):
            try:
                job = self.client.claim(self.name)
            except (PortalError, LostJob) as exc:
                log.warning("%s; trying again in %.0f s", exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 10)
                continue
            backoff = self.poll_seconds
            if job is None:
                self.stopping.wait(self.poll_seconds)
                continue
            self.run_job(job)
            done += 1

    def still_ours(self, job: dict) -> bool:
        """The heartbeat: False when the portal says the job is no longer ours (or we are stopping)."""
        if self.stopping.is_set():
            return False
        try:
            self.client.heartbeat(job)
        except LostJob as exc:
            log.info("job %s: %s", job["id"], exc)
            return False
        except PortalError as exc:  # the portal is down for a moment: keep solving, the lease may still hold
            log.warning("job %s: heartbeat failed: %s", job["id"], exc)
        return True

    def run_job(self, job: dict) -> None:
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"job{job['id']}-", dir=self.scratch_root))
        log.info("job %s (run %s): %s, %s bytes", job["id"], job.get("attempt"), job.get("filename"),
                 job.get("input_size"))
        try:
            raw = scratch / "download"
            self.client.fetch_input(job, raw)
            head = raw.read_bytes()[:16]
            input_path = scratch / runner.input_name(job["input_format"], head)
            raw.rename(input_path)
            beat = max(1.0, float(job["lease_seconds"]) / 3)
            outcome = runner.run(input_path, scratch, job["solve_field_args"], float(job["timeout_seconds"]),
                                 lambda: self.still_ours(job), beat)
            log.info("job %s: %s in %.2f s %s", job["id"], outcome.status, outcome.seconds, outcome.message)
            if outcome.status != "lost":
                self.report(job, outcome)
        except LostJob as exc:
            log.info("job %s is no longer ours: %s", job["id"], exc)
        except PortalError as exc:
            log.warning("job %s: %s (its lease will run out and it will run again)", job["id"], exc)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


    def report(self, job: dict, outcome: runner.Outcome) -> None:
        """Send the results; when the portal refuses them (too large), send the outcome without the new FITS."""
        try:
            self.client.report(job, outcome.status, outcome.message, outcome.seconds, outcome.files)
        except PortalError as exc:
            if "new_fits" not in outcome.files:
                raise
            log.warning("job %s: results refused (%s); sending them without the new FITS file", job["id"], exc)
            files = {k: v for k, v in outcome.files.items() if k != "new_fits"}
            self.client.report(job, outcome.status, outcome.message, outcome.seconds, files)


def install_signal_handlers(worker: Worker) -> None:
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)


