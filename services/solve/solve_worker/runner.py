"""solve-field on one input, in its own scratch directory, killed with its whole process group at the deadline.

solve-field starts helper processes (image conversion, astrometry-engine); its own --cpulimit counts CPU time
and overshoots on a busy machine, so the wall clock is enforced here: the process group gets SIGTERM at the
deadline and SIGKILL shortly after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SOLVE_FIELD = os.environ.get("SOLVE_FIELD", "solve-field")
EXTENSIONS = {"fits": ".fits", "xylist": ".xyls"}
IMAGE_MAGICS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"II*\x00": ".tif", b"MM\x00*": ".tif"}


@dataclass
class Outcome:
    """What happened: success | failure | timed_out | lost (the portal took the job back), and the files."""

    status: str
    message: str
    seconds: float
    files: dict[str, Path] = field(default_factory=dict)


def input_name(input_format: str, head: bytes) -> str:
    """A file name whose extension tells solve-field what the input is."""
    if input_format in EXTENSIONS:
        return "input" + EXTENSIONS[input_format]
    for magic, ext in IMAGE_MAGICS.items():
        if head.startswith(magic):
            return "input" + ext
    return "input.img"


def command(input_path: Path, out_dir: Path, args: list[str], timeout: float) -> list[str]:
    """The solve-field command line: the portal's arguments for the job's options plus fixed outputs."""
    return [SOLVE_FIELD, "--overwrite", "--no-plots", "--dir", str(out_dir), "--temp-dir", str(out_dir / "tmp"),
            "--wcs", str(out_dir / "wcs.fits"), "--new-fits", str(out_dir / "new.fits"),
            "--corr", str(out_dir / "corr.fits"), "--cpulimit", str(int(timeout) + 1),
            *args, str(input_path)]


def kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """Stop the process and every process it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(input_path: Path, scratch: Path, args: list[str], timeout: float,
        still_ours: Callable[[], bool], beat_every: float) -> Outcome:
    """Run solve-field; every `beat_every` seconds ask `still_ours()` (the heartbeat), stop when it says no."""
    out_dir = scratch / "out"
    (out_dir / "tmp").mkdir(parents=True, exist_ok=True)
    log_path = scratch / "solve-field.log"
    start = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command(input_path, out_dir, args, timeout), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=scratch, start_new_session=True)
        next_beat = start + beat_every
        try:
            while True:
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now - start > timeout:
                    kill_group(proc)
                    return Outcome("timed_out", f"solve-field did not finish within {timeout:g} s "
                                                "(services.solve.timeout_seconds) and was stopped; give scale or "
                                                "position hints, or downsample", time.monotonic() - start,
                                   {"log": log_path})
                if now >= next_beat:
                    next_beat = now + beat_every
                    if not still_ours():
                        kill_group(proc)
                        return Outcome("lost", "the portal took the job back", time.monotonic() - start)
        finally:
            if proc.poll() is None:
                kill_group(proc)
    seconds = time.monotonic() - start
    files = {"wcs": out_dir / "wcs.fits", "new_fits": out_dir / "new.fits", "corr": out_dir / "corr.fits",
             "log": log_path}
    solved = any(out_dir.glob("*.solved")) and files["wcs"].is_file()
    if solved:
        return Outcome("success", "", seconds, files)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    if proc.returncode not in (0, None):
        reason = f"solve-field stopped with status {proc.returncode}: {' / '.join(tail)}"
    else:
        reason = ("no solution: the field did not match the installed index stars (check the scale and position "
                  "hints, or whether the image shows enough stars)")
    return Outcome("failure", reason, seconds, {"log": log_path})
