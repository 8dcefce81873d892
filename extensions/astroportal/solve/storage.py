"""Where the solve service keeps files: under paths.var/solve, shared by every app process on this host."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from astroportal.config import Config

# Result files a worker may upload, and the names they are kept under (nova's download names in nova_api).
RESULT_FILES = {"wcs": "wcs.fits", "new_fits": "new.fits", "corr": "corr.fits", "log": "solve-field.log"}


def solve_dir(cfg: Config) -> Path:
    path = cfg.var_dir / "solve"
    path.mkdir(parents=True, exist_ok=True)
    return path


def submission_dir(cfg: Config, submission_id: int) -> Path:
    return solve_dir(cfg) / "submissions" / str(submission_id)


def job_dir(cfg: Config, job_id: int) -> Path:
    return solve_dir(cfg) / "jobs" / str(job_id)


def input_path(cfg: Config, submission_id: int) -> Path:
    """The submitted input as the worker receives it (an image, a FITS file or an x/y list in FITS)."""
    return submission_dir(cfg, submission_id) / "input"


def preview_path(cfg: Config, submission_id: int) -> Path:
    """A JPEG of the image for the job page (absent for an x/y list)."""
    return submission_dir(cfg, submission_id) / "preview.jpg"


def result_path(cfg: Config, job_id: int, kind: str) -> Path:
    return job_dir(cfg, job_id) / RESULT_FILES[kind]


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` so that a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def clear_results(cfg: Config, job_id: int) -> None:
    """Forget a job's results (before it runs again)."""
    shutil.rmtree(job_dir(cfg, job_id), ignore_errors=True)
