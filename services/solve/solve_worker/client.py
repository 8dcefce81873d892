"""The portal's worker API (/api/solve/worker/...), as the worker sees it."""

from __future__ import annotations

from pathlib import Path

import requests


class LostJob(Exception):
    """The portal says the job is no longer ours (cancelled, or our lease ran out and it runs elsewhere)."""


class PortalError(Exception):
    """The portal refused a request for another reason, or cannot be reached."""


class PortalClient:
    """HTTP calls to the portal with the worker's own token."""

    def __init__(self, url: str, token: str, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kw) -> requests.Response:
        try:
            resp = self.http.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise PortalError(f"cannot reach the portal at {self.url}: {exc}") from None
        if resp.status_code == 409:
            raise LostJob(_message(resp))
        if resp.status_code >= 400:
            raise PortalError(f"{method} {path}: HTTP {resp.status_code}: {_message(resp)}")
        return resp

    def claim(self, worker: str) -> dict | None:
        return self._call("POST", "/api/solve/worker/claim", json={"worker": worker}).json()["data"]["job"]

    def heartbeat(self, job: dict) -> None:
        self._call("POST", f"/api/solve/worker/jobs/{job['id']}/heartbeat", json={"claim": job["claim"]})

    def fetch_input(self, job: dict, dest: Path) -> None:
        resp = self._call("GET", f"/api/solve/worker/jobs/{job['id']}/input", params={"claim": job["claim"]})
        dest.write_bytes(resp.content)

    def report(self, job: dict, outcome: str, message: str, solve_seconds: float | None,
               files: dict[str, Path]) -> None:
        data = {"claim": job["claim"], "outcome": outcome, "message": message,
                "solve_seconds": "" if solve_seconds is None else f"{solve_seconds:.3f}"}
        handles = {kind: (path.name, path.open("rb")) for kind, path in files.items() if path.is_file()}
        try:
            self._call("POST", f"/api/solve/worker/jobs/{job['id']}/result", data=data, files=handles)
        finally:
            for _, fh in handles.values():
                fh.close()


def _message(resp: requests.Response) -> str:
    try:
        return resp.json().get("message") or resp.text[:300]
    except ValueError:
        return resp.text[:300]
