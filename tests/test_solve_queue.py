"""The solve queue with real workers: a worker killed in the middle of a job (the job finishes under the same id
on another worker), two workers sharing ten jobs without running any twice, cancel and retry of a running job,
the wall-clock limit, and the recorded history of every job."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import requests
from solve_support import NovaClient, SolvePortal, index_stars, synthetic_field, synthetic_wcs

from conftest import wait_until

TIMEOUT = 20


@pytest.fixture(scope="module")
def portal():
    p = SolvePortal({"timeout_seconds": TIMEOUT, "lease_seconds": 4})
    yield p
    p.stop()


@pytest.fixture(autouse=True)
def no_workers_left(portal):
    yield
    portal.stop_workers()


def client(portal) -> NovaClient:
    c = NovaClient(portal.url + "/nova", portal.admin_token)
    c.login()
    return c


def star_list(ra: float, dec: float, size: int = 1024, scale: float = 7.0) -> dict:
    """An x/y list of the index's stars as a 1024x1024 camera at 7"/pixel would see them (brightest first)."""
    wcs = synthetic_wcs(ra, dec, scale, size, 30.0)
    stars = index_stars(ra, dec, scale * size * 0.75 / 3600)
    x, y = wcs.all_world2pix(stars[:, 0], stars[:, 1], 1)
    keep = (x > 1) & (x < size) & (y > 1) & (y < size)
    order = np.argsort(stars[keep, 2])
    return {"x": [float(v) for v in x[keep][order]], "y": [float(v) for v in y[keep][order]],
            "image_width": size, "image_height": size}


def random_list(n: int = 300, seed: int = 0) -> dict:
    """Points that match no sky: solve-field searches (blind) until it is stopped."""
    rng = np.random.default_rng(seed)
    return {"x": [float(v) for v in rng.uniform(1, 2000, n)], "y": [float(v) for v in rng.uniform(1, 2000, n)],
            "image_width": 2000, "image_height": 2000}


def submit_list(c: NovaClient, body: dict) -> int:
    answer = c.post("url_upload", body)
    assert answer.status_code == 200, answer.text
    return answer.json()["subid"]


def job_of(portal, c: NovaClient, subid: int, timeout: float = 60) -> dict:
    """The job of a submission once a worker has started it (the API's own detail)."""
    found = {}

    def started() -> bool:
        jobs = c.get(f"api/submissions/{subid}").json()["jobs"]
        if jobs and jobs[0] is not None:
            found["job"] = portal.api("GET", f"/api/solve/jobs/{jobs[0]}")
            return found["job"]["status"] != "queued"
        return False

    assert wait_until(started, timeout, 0.05), "no worker started the job"
    return found["job"]


def test_a_worker_killed_mid_job_the_job_finishes_under_the_same_id(portal):
    data, _ = synthetic_field(150.0, 20.0, seed=5)
    c = client(portal)
    answer = c.upload(data, "killed.fits", scale_units="arcsecperpix", scale_lower=6, scale_upper=8)
    subid = answer.json()["subid"]
    victim = portal.start_worker("victim")
    job = job_of(portal, c, subid)
    assert job["status"] == "running" and job["worker"] == "victim"
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its solve-field, as a crashed machine would
    victim.wait(10)
    portal.start_worker("rescuer")
    job_id, status = c.wait_job(subid, timeout=180)
    assert job_id == job["id"] and status == "success"
    final = portal.api("GET", f"/api/solve/jobs/{job_id}")
    assert final["attempts"] == 2 and final["worker"] == "rescuer"
    steps = [(t["from"], t["to"], t["worker"]) for t in final["transitions"]]
    assert steps == [(None, "queued", None), ("queued", "running", "victim"), ("running", "queued", "victim"),
                     ("queued", "running", "rescuer"), ("running", "success", "rescuer")]
    assert "lease" in final["transitions"][2]["note"]
    times = [t["at"] for t in final["transitions"]]
    assert times == sorted(times)


def test_two_workers_share_ten_jobs_and_run_none_twice(portal):
    c = client(portal)
    fields = [(30.0 * i + 5, 10.0 - 3 * i) for i in range(10)]
    subids = []
    for ra, dec in fields:
        body = star_list(ra, dec)
        body.update(scale_units="arcsecperpix", scale_lower=6.5, scale_upper=7.5)
        subids.append(submit_list(c, body))
    portal.start_worker("w1")
    portal.start_worker("w2")
    results = [c.wait_job(s, timeout=300) for s in subids]
    assert [status for _, status in results] == ["success"] * 10
    jobs = [portal.api("GET", f"/api/solve/jobs/{job_id}") for job_id, _ in results]
    for job, (_ra, dec) in zip(jobs, fields):
        runs = [t for t in job["transitions"] if t["to"] == "running"]
        assert len(runs) == 1 and job["attempts"] == 1, job["transitions"]
        assert abs(job["calibration"]["dec"] - dec) < 0.01
    assert {j["worker"] for j in jobs} == {"w1", "w2"}
    # Each worker cleaned its scratch directory after each job.
    for name in ("w1", "w2"):
        assert not any((portal.base / "scratch" / name).iterdir())


def test_cancel_a_running_job_stops_its_solve_field_and_retry_queues_it_again(portal):
    c = client(portal)
    subid = submit_list(c, random_list(seed=1))
    worker = portal.start_worker("w-cancel")
    job = job_of(portal, c, subid)
    assert job["status"] == "running"
    answer = c.post(f"jobs/{job['id']}/cancel", {})
    assert answer.status_code == 200 and answer.json()["job_status"] == "cancelled"
    # The worker learns it at its next heartbeat (lease 4 s: every ~1.3 s) and kills solve-field.
    assert wait_until(lambda: "no longer ours" in portal.worker_log("w-cancel")
                      or "took the job back" in portal.worker_log("w-cancel"), 15)
    assert wait_until(lambda: not any(p for p in os.listdir("/proc") if p.isdigit()
                                      and _is_child_solver(p, worker.pid)), 10)
    assert c.get(f"api/jobs/{job['id']}").json()["status"] == "failure"
    again = c.post(f"jobs/{job['id']}/retry", {})
    assert again.status_code == 200 and again.json()["job_status"] == "queued"
    job2 = job_of(portal, c, subid)
    assert job2["id"] == job["id"] and job2["status"] == "running"
    c.post(f"jobs/{job['id']}/cancel", {})
    final = portal.api("GET", f"/api/solve/jobs/{job['id']}")
    assert [t["to"] for t in final["transitions"]] == ["queued", "running", "cancelled", "queued", "running",
                                                       "cancelled"]
    # A finished job cannot be cancelled; a cancelled one cannot be cancelled twice.
    refused = c.post(f"jobs/{job['id']}/cancel", {})
    assert refused.status_code == 409 and "already ended" in refused.json()["errormessage"]


def _is_child_solver(pid: str, worker_pid: int) -> bool:
    """Whether /proc/PID is an astrometry process in the worker's process group."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False
    pgid = int(stat.rsplit(")", 1)[1].split()[2])
    return pgid == worker_pid and (b"solve-field" in cmd or b"astrometry-engine" in cmd)


def test_a_job_over_the_time_limit_is_killed_and_timed_out(portal):
    c = client(portal)
    subid = submit_list(c, random_list(seed=2))
    portal.start_worker("w-slow")
    started = time.time()
    job_id, status = c.wait_job(subid, timeout=TIMEOUT + 60)
    assert status == "failure"
    job = portal.api("GET", f"/api/solve/jobs/{job_id}")
    assert job["status"] == "timed_out" and "did not finish within" in job["message"]
    assert TIMEOUT - 1 <= job["duration"] <= TIMEOUT + 15
    assert time.time() - started < TIMEOUT + 45


def test_a_field_that_does_not_solve_fails_with_a_message(portal):
    c = client(portal)
    body = random_list(20, seed=3)
    body.update(scale_units="arcsecperpix", scale_lower=6.9, scale_upper=7.1, center_ra=10, center_dec=10,
                radius=0.5)
    subid = submit_list(c, body)
    portal.start_worker("w-fail")
    job_id, status = c.wait_job(subid, timeout=TIMEOUT + 60)
    assert status == "failure"
    job = portal.api("GET", f"/api/solve/jobs/{job_id}")
    assert job["status"] == "failure" and "no solution" in job["message"]
    missing = c.get(f"api/jobs/{job_id}/calibration")
    assert missing.status_code == 404 and "no calibration" in missing.json()["errormessage"]
    assert c.get(f"wcs_file/{job_id}").status_code == 404


def test_the_worker_api_needs_the_worker_acl(portal):
    answer = requests.post(portal.url + "/api/solve/worker/claim", json={"worker": "intruder"},
                           headers={"Authorization": "token not-a-token"}, timeout=10)
    assert answer.status_code == 401
    token = portal.api("POST", "/api/service_tokens", json={"name": "uploader-bot", "acls": ["Solve images"]})["token"]
    answer = requests.post(portal.url + "/api/solve/worker/claim", json={"worker": "intruder"},
                           headers={"Authorization": f"token {token}"}, timeout=10)
    assert answer.status_code == 403 and "Run solve jobs" in answer.json()["message"]
    stale = requests.post(portal.url + "/api/solve/worker/jobs/1/heartbeat", json={"claim": "not-the-claim"},
                          headers={"Authorization": "token " + portal.worker_token_file.read_text()}, timeout=10)
    assert stale.status_code == 409

