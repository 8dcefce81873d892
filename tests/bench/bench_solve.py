"""Plate solving: accuracy and speed of the solve service on synthetic fields made from the Tycho-2 index.

    .venv/bin/python tests/bench/bench_solve.py [--fields 3] [--repeats 3] [--jobs 10]

Each field is a 1024x1024 FITS image of the index's own stars (query-starkd) seen through a known TAN WCS
(Gaussian stars on noise). It prints:
  - accuracy: the solved centre against the generating WCS (target: within 2") and the pixel scale (within 0.5 %);
  - speed: upload -> calibration available through the portal (nova API, one worker) against bare solve-field
    on the same file with the same arguments (target: at most 1.1 x bare + 0.5 s), median of --repeats;
  - throughput: --jobs jobs on one worker, then on two (target: about half the time).
It starts its own PostgreSQL cluster, portal and workers (tests/solve_support.py) and stops them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent / "services" / "solve"))

from solve_support import NovaClient, SolvePortal, centre_offset_arcsec, synthetic_field  # noqa: E402
from solve_worker import runner  # noqa: E402

FIELDS = [(150.0, 20.0, 7.0, 20.0), (250.0, -35.0, 6.0, 110.0), (40.0, 60.0, 8.0, 250.0), (310.0, 5.0, 7.5, 0.0),
          (95.0, -60.0, 6.5, 45.0)]
OPTIONS = {"scale_units": "arcsecperpix", "scale_type": "ul"}


def options_for(scale: float) -> dict:
    return dict(OPTIONS, scale_lower=round(scale * 0.9, 3), scale_upper=round(scale * 1.1, 3))


def solve_field_args(opts: dict) -> list[str]:
    return ["--scale-units", opts["scale_units"], "--scale-low", repr(opts["scale_lower"]),
            "--scale-high", repr(opts["scale_upper"])]


def bare_solve(data: bytes, opts: dict, timeout: float = 300) -> float:
    """Seconds of solve-field alone on the file, as a worker runs it (same outputs and arguments)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    try:
        path = scratch / "input.fits"
        path.write_bytes(data)
        (scratch / "out" / "tmp").mkdir(parents=True)
        cmd = runner.command(path, scratch / "out", solve_field_args(opts), timeout)
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True, timeout=timeout)
        seconds = time.perf_counter() - start
        if not (scratch / "out" / "wcs.fits").is_file():
            raise RuntimeError("bare solve-field did not solve the field")
        return seconds
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def through_portal(client: NovaClient, data: bytes, opts: dict) -> tuple[float, int]:
    """Seconds from the start of the upload until GET calibration answers, and the job id."""
    start = time.perf_counter()
    answer = client.upload(data, "bench.fits", **opts)
    answer.raise_for_status()
    subid = answer.json()["subid"]
    job_id = None
    while True:
        if job_id is None:
            jobs = client.get(f"api/submissions/{subid}").json()["jobs"]
            job_id = jobs[0] if jobs else None
        if job_id is not None:
            cal = client.get(f"api/jobs/{job_id}/calibration")
            if cal.status_code == 200:
                return time.perf_counter() - start, job_id
            if client.get(f"api/jobs/{job_id}").json()["status"] == "failure":
                raise RuntimeError(f"job {job_id} failed")
        time.sleep(0.02)


def throughput(portal: SolvePortal, client: NovaClient, fields: list, workers: int) -> float:
    """Seconds for every field to be solved with `workers` workers (jobs queued first, then workers started)."""
    portal.stop_workers()
    subids = []
    for data, _, opts, _ in fields:
        answer = client.upload(data, "batch.fits", **opts)
        answer.raise_for_status()
        subids.append(answer.json()["subid"])
    start = time.perf_counter()
    for i in range(workers):
        portal.start_worker(f"batch{workers}-{i}", "--poll-seconds", "0.1")
    for subid in subids:
        _, status = client.wait_job(subid, timeout=900)
        if status != "success":
            raise RuntimeError(f"submission {subid} failed in the throughput run")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=3, help="synthetic fields for accuracy and speed (max 5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing (the median is shown)")
    parser.add_argument("--jobs", type=int, default=10, help="jobs of the one- and two-worker runs")
    args = parser.parse_args()
    import warnings

    from astropy.wcs import FITSFixedWarning

    warnings.simplefilter("ignore", FITSFixedWarning)  # a WCS file is a header without an image

    print("making synthetic fields from the Tycho-2 index ...", flush=True)
    fields = []
    for i, (ra, dec, scale, rot) in enumerate(FIELDS[: max(1, min(args.fields, len(FIELDS)))]):
        data, wcs = synthetic_field(ra, dec, scale_arcsec=scale, size=1024, rotation_deg=rot, seed=100 + i)
        fields.append((data, wcs, options_for(scale), (ra, dec, scale)))

    portal = SolvePortal({"timeout_seconds": 300, "max_upload_mb": 20})
    ok = True
    try:
        client = NovaClient(portal.url + "/nova", portal.admin_token)
        client.login()
        portal.start_worker("bench", "--poll-seconds", "0.1")

        print("\naccuracy and speed (1024x1024 synthetic fields, scale hints +-10 %)")
        print(f"{'field':>28} {'centre err':>11} {'scale err':>10} {'bare s':>8} {'portal s':>9} {'ratio':>6} "
              f"{'limit s':>8}")
        worst_centre = worst_scale = 0.0
        for data, truth, opts, (ra, dec, scale) in fields:
            bare, portal_times, job_id = [], [], None
            for i in range(args.repeats):
                # Alternate which runs first, so that a change of load on the machine hits both alike.
                if i % 2:
                    bare.append(bare_solve(data, opts))
                seconds, job_id = through_portal(client, data, opts)
                portal_times.append(seconds)
                if not i % 2:
                    bare.append(bare_solve(data, opts))
            from astropy.io import fits
            from astropy.wcs import WCS

            solved = WCS(fits.Header.fromstring(client.get(f"wcs_file/{job_id}").content))
            cal = client.get(f"api/jobs/{job_id}/calibration").json()
            centre = centre_offset_arcsec(solved, 1024, *truth.all_pix2world([[512.5, 512.5]], 1)[0])
            scale_err = abs(cal["pixscale"] - scale) / scale * 100
            b, p = statistics.median(bare), statistics.median(portal_times)
            limit = 1.1 * b + 0.5
            worst_centre, worst_scale = max(worst_centre, centre), max(worst_scale, scale_err)
            ok &= centre <= 2 and scale_err <= 0.5 and p <= limit
            name = f"RA {ra:g} Dec {dec:+g} {scale:g}\"/px"
            print(f"{name:>28} {centre:>9.3f} \" {scale_err:>8.4f} % "
                  f"{b:>8.2f} {p:>9.2f} {p / b:>6.3f} {limit:>8.2f}", flush=True)
        print(f"worst centre error {worst_centre:.3f}\" (target <= 2\"), worst scale error {worst_scale:.4f} % "
              f"(target <= 0.5 %)")

        batch = [fields[i % len(fields)] for i in range(args.jobs)]
        print(f"\nthroughput: {args.jobs} jobs", flush=True)
        one = throughput(portal, client, batch, 1)
        print(f"  1 worker : {one:7.2f} s", flush=True)
        two = throughput(portal, client, batch, 2)
        print(f"  2 workers: {two:7.2f} s   speed-up {one / two:.2f} x (target about 2 x; the machine has "
              f"{__import__('os').cpu_count()} cores shared with other work)")
    finally:
        portal.stop()
    print("\nall targets met" if ok else "\nsome accuracy or latency target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
