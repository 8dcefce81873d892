"""Bad input to the solve service gets a clear answer, queues nothing and leaves the service up: not an image,
a corrupt FITS file, an empty file, a file over services.solve.max_upload_mb, a decompression bomb, URLs to
loopback or private addresses (no request is made to them), options unknown or out of range."""

from __future__ import annotations

import http.server
import json
import os
import struct
import threading
import zlib

import pytest
import requests
from solve_support import NovaClient, SolvePortal, synthetic_field

MAX_MB = 3


@pytest.fixture(scope="module")
def portal():
    p = SolvePortal({"max_upload_mb": MAX_MB, "max_megapixels": 50})
    yield p
    p.stop()


@pytest.fixture(scope="module")
def nova(portal) -> NovaClient:
    c = NovaClient(portal.url + "/nova", portal.admin_token)
    assert c.login()["status"] == "success"
    return c


def job_count(portal) -> int:
    return sum(portal.api("GET", "/api/solve/jobs")["counts"].values())


def refused(answer: requests.Response, status: int, *words: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == "error"
    for word in words:
        assert word in body["errormessage"], body["errormessage"]
    return body["errormessage"]


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG of a few hundred bytes whose header declares width x height pixels (10 giga-pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" + b"\x00" * (width // 8 + 1), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_files_that_are_not_solvable_images_are_refused_with_the_reason(portal, nova):
    before = job_count(portal)
    refused(nova.upload(b"", "empty.fits"), 400, "empty")
    refused(nova.upload(b"these are my observing notes\n" * 20, "notes.txt"), 400, "neither a FITS file nor an image")
    data, _ = synthetic_field(150.0, 20.0, size=512)
    refused(nova.upload(data[: len(data) // 2], "truncated.fits"), 400, "corrupt or truncated")
    refused(nova.upload(b"SIMPLE  = T" + os.urandom(5000), "garbage.fits"), 400, "FITS")
    refused(nova.upload(b"\xff\xd8\xff\xe0" + os.urandom(3000), "broken.jpg"), 400, "cannot be read")
    bomb = bomb_png()
    assert len(bomb) < 20_000
    refused(nova.upload(bomb, "bomb.png"), 400, "decompression bomb", "before being decoded")
    refused(nova.upload(bomb_png(9000, 9000), "big.png"), 400, "9000 x 9000", "max_megapixels")
    refused(nova.upload(os.urandom((MAX_MB + 1) * 1024 * 1024), "huge.fits"), 413, "max_upload_mb",
            f"limit of {MAX_MB} MB")
    assert job_count(portal) == before
    # The service is still up and takes a good file.
    ok = nova.upload(data, "good.fits", scale_units="arcsecperpix", scale_lower=6, scale_upper=8)
    assert ok.status_code == 200 and ok.json()["status"] == "success"
    assert job_count(portal) == before + 1


class CountingServer(http.server.ThreadingHTTPServer):
    requests_seen = 0


class CountingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests_seen += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"\x89PNG\r\n\x1a\n")

    def log_message(self, *args):
        pass


def test_urls_to_loopback_and_private_addresses_are_refused_without_a_request(portal, nova):
    server = CountingServer(("127.0.0.1", 0), CountingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        for url in (f"http://127.0.0.1:{port}/sky.jpg", f"http://localhost:{port}/sky.jpg",
                    f"http://[::1]:{port}/sky.jpg", f"http://0x7f000001:{port}/sky.jpg",
                    "http://10.1.2.3/sky.jpg", "http://192.168.0.1/sky.jpg", "http://169.254.169.254/latest"):
            refused(nova.post("url_upload", {"url": url}), 400, "loopback, private or reserved")
        refused(nova.post("url_upload", {"url": "file:///etc/passwd"}), 400, "http:// or https://")
        refused(nova.post("url_upload", {}), 400, "url")
        assert server.requests_seen == 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("options, words", [
    ({"scale_lower": -1, "scale_upper": 2, "scale_units": "degwidth"}, ["scale_lower", "greater than 0"]),
    ({"scale_lower": 3, "scale_upper": 2}, ["scale_upper", "below"]),
    ({"scale_units": "furlongs", "scale_lower": 1, "scale_upper": 2}, ["scale_units", "arcsecperpix"]),
    ({"scale_type": "ev", "scale_est": 2}, ["scale_err"]),
    ({"center_ra": 10, "center_dec": 95, "radius": 1}, ["center_dec", "at most 90"]),
    ({"center_ra": 400, "center_dec": 0, "radius": 1}, ["center_ra"]),
    ({"center_ra": 10, "center_dec": 10}, ["radius"]),
    ({"center_ra": 10}, ["center_dec"]),
    ({"parity": 5}, ["parity"]),
    ({"downsample_factor": 0}, ["downsample_factor"]),
    ({"downsample_factor": 2.5}, ["downsample_factor", "whole number"]),
    ({"tweak_order": "two"}, ["tweak_order", "number"]),
    ({"publicly_visible": "maybe"}, ["publicly_visible"]),
    ({"scale_lowr": 1}, ["unknown option `scale_lowr`"]),
])
def test_options_unknown_or_out_of_range_are_refused_by_name(portal, nova, options, words):
    data, _ = synthetic_field(150.0, 20.0, size=256)
    before = job_count(portal)
    refused(nova.upload(data, "field.fits", **options), 400, *words)
    assert job_count(portal) == before


def test_requests_without_a_valid_session_or_json_are_refused(portal, nova):
    refused(requests.post(portal.url + "/nova/api/login", data={"request-json": json.dumps({"apikey": "nope"})},
                          timeout=10), 401, "bad apikey")
    refused(requests.post(portal.url + "/nova/api/upload", data={"request-json": "{not json"}, timeout=10), 400,
            "request-json")
    refused(requests.post(portal.url + "/nova/api/upload", data={}, timeout=10), 400, "no json")
    refused(requests.post(portal.url + "/nova/api/upload",
                          data={"request-json": json.dumps({"session": "forged"})}, timeout=10), 401, "no session")
    refused(nova.post("upload", {}), 400, "no file")
    refused(nova.post("url_upload", {"x": [1, 2, 3], "y": [1, 2], "image_width": 100, "image_height": 100}), 400,
            "same length")
    refused(requests.get(portal.url + "/nova/api/jobs/999999", timeout=10), 404, "no solve job")
    refused(requests.get(portal.url + "/nova/api/nothing_here", timeout=10), 404, "no such nova API route")


def test_a_private_submission_is_shown_only_to_the_solvers(portal, nova):
    data, _ = synthetic_field(150.0, 20.0, size=256)
    answer = nova.upload(data, "private.fits", publicly_visible="n")
    assert answer.status_code == 200, answer.text
    subid = answer.json()["subid"]
    refused(requests.get(f"{portal.url}/nova/api/submissions/{subid}", timeout=10), 404, "publicly_visible=n")
    assert nova.post(f"submissions/{subid}", {}).json()["jobs"] == [None]  # client.py sends its session
    outsider = portal.api("POST", "/api/service_tokens", json={"name": "outsider-bot", "acls": []})["token"]
    answer = requests.get(f"{portal.url}/nova/api/submissions/{subid}", timeout=10,
                          headers={"Authorization": f"token {outsider}"})
    refused(answer, 403, "publicly_visible=n")
    public = nova.upload(data, "public.fits").json()["subid"]
    assert requests.get(f"{portal.url}/nova/api/submissions/{public}", timeout=10).status_code == 200
