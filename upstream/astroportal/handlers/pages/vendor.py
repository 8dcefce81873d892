"""Third-party browser libraries served from the installed Python packages (the portal uses no CDN)."""

from __future__ import annotations

import gzip
import importlib.util
import threading
from importlib.metadata import version
from pathlib import Path

import tornado.ioloop
import tornado.web

# Files served at /vendor/<name>: (package, path inside the package).
VENDOR_FILES = {"plotly.min.js": ("plotly", "package_data/plotly.min.js")}


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing the package itself."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the Python package `{package}` is not installed; the portal's pages need it")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the installed package `{package}`")
    return path


def plotly_version() -> str:
    """The installed plotly package's version, used to bust browser caches when it changes."""
    return version("plotly")


_PLOTLY_URL: str | None = None


def plotly_url() -> str:
    """Where pages load Plotly from (versioned, so that browsers may cache it for good)."""
    global _PLOTLY_URL
    if _PLOTLY_URL is None:
        _PLOTLY_URL = f"/vendor/plotly.min.js?v={plotly_version()}"
    return _PLOTLY_URL


class _Cached:
    """A vendor file's bytes and their gzip form, read and compressed once per process.

    Plotly is 4.6 MB: compressing it on every request would hold the (single-threaded) server for a good
    fraction of a second each time; once compressed it is served from memory (1.4 MB).
    """

    _lock = threading.Lock()
    _files: dict[str, tuple[bytes, bytes, str]] = {}

    @classmethod
    def get(cls, name: str) -> tuple[bytes, bytes, str]:
        with cls._lock:
            if name not in cls._files:
                package, relative = VENDOR_FILES[name]
                raw = package_file(package, relative).read_bytes()
                etag = f'"{package}-{version(package)}"'
                cls._files[name] = (raw, gzip.compress(raw, compresslevel=6, mtime=0), etag)
            return cls._files[name]


class VendorFileHandler(tornado.web.RequestHandler):
    """GET /vendor/<name>: a library file from an installed package, gzipped when the browser accepts it."""

    async def get(self, name: str) -> None:
        if name not in VENDOR_FILES:
            raise tornado.web.HTTPError(404)
        # The first request reads and compresses in a worker thread (zlib lets go of the GIL), so the page's
        # own API requests are answered meanwhile.
        raw, packed, etag = await tornado.ioloop.IOLoop.current().run_in_executor(None, _Cached.get, name)
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("ETag", etag)
        self.set_header("Vary", "Accept-Encoding")
        if self.get_query_argument("v", None):
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        else:
            self.set_header("Cache-Control", "public, max-age=3600")
        if self.request.headers.get("If-None-Match") == etag:
            self.set_status(304)
            self.finish()
            return
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            # With Content-Encoding set, the app's own response compression leaves the body alone.
            self.set_header("Content-Encoding", "gzip")
            self.finish(packed)
        else:
            self.finish(raw)

    def compute_etag(self) -> None:
        return None  # the ETag above is the package version; no need to hash 4.6 MB per request


ROUTES = [
    (r"/vendor/([A-Za-z0-9_.-]+)", VendorFileHandler),
]
