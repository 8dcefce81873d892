"""Shared ground of the solve service's tests and benchmark: a portal from the patched build on a throwaway
PostgreSQL cluster, real solve workers as processes, a nova client, and synthetic star fields made from the
Tycho-2 index that solve-field itself uses."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests
import yaml

from conftest import CODE_ROOT, PYTHON, free_port, launcher, link_real_layers, private_tmpdir, wait_until

TYCHO2_INDEX = "/usr/share/astrometry/index-tycho2-10.littleendian.fits"
APOD4 = CODE_ROOT / "tests" / "data" / "images" / "apod4.jpg"


class SolvePortal:
    """The real tree built and served from patched/ with `solve` settings, plus workers started on demand."""

    def __init__(self, solve: dict | None = None, processes: int = 1) -> None:
        sys.path.insert(0, str(CODE_ROOT / "upstream" / "tests"))
        from pgcluster import PgCluster

        self.base = private_tmpdir("portal-solve-")
        self.root = self.base / "project"
        link_real_layers(self.root)
        self.pg = PgCluster().start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = {"lease_seconds": 6, "timeout_seconds": 90, "max_upload_mb": 6, "max_megapixels": 100}
        settings.update(solve or {})
        (self.root / "config.yaml").write_text(yaml.safe_dump({
            "server": {"port": self.port},
            "database": {"url": self.pg.create_database("solve_test")},
            "services": {"solve": settings},
        }))
        res = launcher(self.root, "migrate")
        assert res.returncode == 0, res.stderr
        self.patched = self.root / "patched"
        self.var = self.root / "var"
        self.log = open(self.base / "serve.log", "w")
        self.proc = subprocess.Popen([PYTHON, "-m", "astroportal", "serve", "--config",
                                      str(self.patched / "config.yaml")],
                                     cwd=self.patched, stdout=self.log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("the portal exited: " + (self.base / "serve.log").read_text())
            try:
                return requests.get(self.url + "/api/sysinfo", timeout=1).ok
            except requests.ConnectionError:
                return False

        if not wait_until(answers, 60):
            raise RuntimeError("the portal did not answer within 60 s")
        self.admin_token = (self.var / "admin_token").read_text().strip()
        self.workers: list[subprocess.Popen] = []
        self.worker_token_file = self.base / "solve.token"
        made = self.api("POST", "/api/service_tokens", json={"name": "solve", "acls": ["Run solve jobs"]})
        self.worker_token_file.write_text(made["token"])
        os.chmod(self.worker_token_file, 0o600)

    def api(self, method: str, path: str, token: str | None = None, **kw):
        resp = requests.request(method, self.url + path,
                                headers={"Authorization": f"token {token or self.admin_token}"}, timeout=60, **kw)
        assert resp.ok, resp.text
        return resp.json()["data"]

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen:
        """A worker process as supervisord starts it (its own process group, so a test can kill it whole)."""
        log = open(self.base / f"worker-{name}.log", "a")
        proc = subprocess.Popen([PYTHON, "-m", "solve_worker", "--url", self.url, "--token-file",
                                 str(self.worker_token_file), "--scratch-dir", str(self.base / "scratch" / name),
                                 "--name", name, *extra],
                                cwd=self.patched / "services" / "solve", stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.workers = []

    def worker_log(self, name: str) -> str:
        path = self.base / f"worker-{name}.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        self.stop_workers()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class NovaClient:
    """A client following nova's documented protocol (request-json form fields, session key, polling)."""

    def __init__(self, server: str, apikey: str) -> None:
        self.server = server.rstrip("/")
        self.apikey = apikey
        self.session: str | None = None

    def post(self, path: str, args: dict, files: dict | None = None) -> requests.Response:
        body = dict(args)
        if self.session and "session" not in body and path != "login":
            body["session"] = self.session
        return requests.post(f"{self.server}/api/{path}", data={"request-json": json.dumps(body)}, files=files,
                             timeout=120)

    def login(self) -> dict:
        answer = self.post("login", {"apikey": self.apikey}).json()
        self.session = answer.get("session")
        return answer

    def upload(self, data: bytes, filename: str = "image.fits", **options) -> requests.Response:
        return self.post("upload", options, files={"file": (filename, data, "application/octet-stream")})

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.server}/{path}", timeout=60)

    def wait_job(self, subid: int, timeout: float = 240) -> tuple[int, str]:
        """Poll the submission until it has a job, then the job until it ends: (job id, final status)."""
        deadline = time.time() + timeout
        job_id = None
        while time.time() < deadline:
            if job_id is None:
                jobs = self.get(f"api/submissions/{subid}").json()["jobs"]
                job_id = jobs[0] if jobs else None
            if job_id is not None:
                status = self.get(f"api/jobs/{job_id}").json()["status"]
                if status in ("success", "failure"):
                    return job_id, status
            time.sleep(0.1)
        raise TimeoutError(f"submission {subid} did not end within {timeout} s (job {job_id})")


# -- synthetic star fields -------------------------------------------------------------------------------------
def index_stars(ra: float, dec: float, radius: float) -> np.ndarray:
    """(ra, dec, mag) rows of the Tycho-2 index's stars within `radius` degrees (query-starkd's FITS output,
    which keeps full precision; its text output has three decimals)."""
    import tempfile

    from astropy.io import fits

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stars.fits"
        subprocess.run(["query-starkd", "-T", "-o", str(out), "-r", str(ra), "-d", str(dec), "-R", str(radius),
                        TYCHO2_INDEX], capture_output=True, check=True, timeout=120)
        with fits.open(out) as hdul:
            table = hdul[1].data
            return np.column_stack([table["RA"], table["DEC"], table["MAG_VT"]]).astype(float)


def synthetic_wcs(ra: float, dec: float, scale_arcsec: float, size: int, rotation_deg: float = 0.0):
    """A TAN WCS centred on (ra, dec), `scale_arcsec` per pixel, north up east left, rotated by `rotation_deg`."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    s = scale_arcsec / 3600
    th = np.radians(rotation_deg)
    w.wcs.cd = np.array([[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]])
    return w


def synthetic_field(ra: float, dec: float, scale_arcsec: float = 7.0, size: int = 1024, rotation_deg: float = 20.0,
                    seed: int = 1) -> tuple[bytes, object]:
    """A FITS image of the index's stars seen through a known TAN WCS (Gaussian stars on noise): (bytes, wcs)."""
    from astropy.io import fits

    wcs = synthetic_wcs(ra, dec, scale_arcsec, size, rotation_deg)
    radius = scale_arcsec * size * 0.75 / 3600
    stars = index_stars(ra, dec, radius)
    rng = np.random.default_rng(seed)
    img = rng.normal(1000.0, 10.0, (size, size))
    x, y = wcs.all_world2pix(stars[:, 0], stars[:, 1], 1)
    flux = 10 ** (-0.4 * (stars[:, 2] - 12)) * 20000
    sigma = 1.6
    half = 7
    for xi, yi, f in zip(x - 1, y - 1, flux):
        if not (-half <= xi < size + half and -half <= yi < size + half):
            continue
        x0, y0 = int(round(xi)), int(round(yi))
        xs = np.arange(max(0, x0 - half), min(size, x0 + half + 1))
        ys = np.arange(max(0, y0 - half), min(size, y0 + half + 1))
        if not len(xs) or not len(ys):
            continue
        gx = np.exp(-0.5 * ((xs - xi) / sigma) ** 2)
        gy = np.exp(-0.5 * ((ys - yi) / sigma) ** 2)
        img[np.ix_(ys, xs)] += f / (2 * np.pi * sigma ** 2) * np.outer(gy, gx)
    header = fits.Header()
    buf = io.BytesIO()
    fits.PrimaryHDU(np.clip(img, 0, 32000).astype(np.int16), header=header).writeto(buf)
    return buf.getvalue(), wcs


def centre_offset_arcsec(wcs, size: int, ra: float, dec: float) -> float:
    """Angle between (ra, dec) and where `wcs` puts the image centre, in arcseconds."""
    from astropy.coordinates import SkyCoord

    c_ra, c_dec = wcs.all_pix2world([[(size + 1) / 2, (size + 1) / 2]], 1)[0]
    return SkyCoord(c_ra, c_dec, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).arcsec
