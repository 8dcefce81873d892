"""`./run.sh nginx`: an nginx site for the portal, checked with `nginx -t` when nginx is installed.

TLS on nginx.listen (443) for the host name of server.url (or nginx.server_name), certificate paths from
nginx.ssl_certificate / nginx.ssl_certificate_key, HTTP on port 80 redirected to HTTPS; requests proxied to
nginx.upstreams (default: this machine's app port, which every app process shares), the websocket
/api/live with its upgrade headers, bodies up to server.max_body_mb; /static/ served by nginx from the build
(patched/ keeps its path across deploys), falling back to the app for files only the app knows
(app.static_paths).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .config import Config
from .errors import LauncherError, info, warn

PACKAGE = "astroportal"


def server_name(cfg: Config) -> str:
    name = cfg.get("nginx.server_name")
    if not name and cfg.get("server.url"):
        name = urlsplit(str(cfg.get("server.url"))).hostname
    if not name:
        raise LauncherError("nginx: no host name: set server.url (https://portal.example.org) or nginx.server_name "
                            "in config.yaml", 2)
    return str(name)


def upstreams(cfg: Config) -> list[str]:
    configured = cfg.get("nginx.upstreams") or []
    if not isinstance(configured, list) or not all(isinstance(u, str) and u for u in configured):
        raise LauncherError(f"nginx.upstreams: expected a list of HOST:PORT, got {configured!r}", 2)
    if configured:
        return configured
    host = str(cfg.get("server.host") or "127.0.0.1")
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return [f"{host}:{cfg.int_value('server.port', 1, 65535, 5000)}"]


def render(cfg: Config) -> str:
    """The site's text."""
    name = server_name(cfg)
    cert = cfg.get("nginx.ssl_certificate") or f"/etc/letsencrypt/live/{name}/fullchain.pem"
    key = cfg.get("nginx.ssl_certificate_key") or f"/etc/letsencrypt/live/{name}/privkey.pem"
    listen = cfg.int_value("nginx.listen", 1, 65535, 443)
    body_mb = cfg.int_value("server.max_body_mb", 1, 100_000, 50)
    static_root = cfg.project.patched / PACKAGE
    servers = "\n".join(f"    server {u};" for u in upstreams(cfg))
    ident = "".join(c if c.isalnum() else "_" for c in name)
    return f"""\
# Written by ./run.sh nginx for {name}; rewrite it with the same command after changing the configuration.
upstream astroportal_{ident} {{
{servers}
    keepalive 16;
}}

map $http_upgrade $astroportal_connection_{ident} {{
    default upgrade;
    ''      '';
}}

server {{
    listen 80;
    listen [::]:80;
    server_name {name};
    return 301 https://$host$request_uri;
}}

server {{
    listen {listen} ssl http2;
    listen [::]:{listen} ssl http2;
    server_name {name};

    ssl_certificate     {cert};
    ssl_certificate_key {key};
    ssl_protocols       TLSv1.2 TLSv1.3;

    # The app refuses larger bodies with a clear message; nginx lets them through up to the same size.
    client_max_body_size {body_mb}m;

    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_http_version 1.1;

    location /static/ {{
        root {static_root};
        expires 1h;
        try_files $uri @app;
    }}

    location /api/live {{
        proxy_pass http://astroportal_{ident};
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $astroportal_connection_{ident};
        proxy_set_header Host $host;
        proxy_read_timeout 1h;
        proxy_buffering off;
    }}

    location / {{
        proxy_pass http://astroportal_{ident};
        proxy_set_header Connection "";
        proxy_read_timeout 300s;
    }}

    location @app {{
        proxy_pass http://astroportal_{ident};
        proxy_set_header Connection "";
    }}
}}
"""


def check(site: Path) -> str | None:
    """`nginx -t` on a throwaway main configuration that includes only `site`; None when nginx is not installed."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not nginx:
        return None
    with tempfile.TemporaryDirectory(prefix="astroportal-nginx-") as tmp:
        main = Path(tmp) / "nginx.conf"
        mime = Path("/etc/nginx/mime.types")
        main.write_text(
            f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\nhttp {{\n"
            + (f"    include {mime};\n" if mime.exists() else "")
            + f"    access_log off;\n    include {site.absolute()};\n}}\n")
        res = subprocess.run([nginx, "-t", "-q", "-c", str(main), "-p", tmp], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise LauncherError(f"nginx -t refuses {site}:\n{(res.stderr or res.stdout).strip()}")
    return nginx


def write(cfg: Config, output: str | None) -> int:
    """`./run.sh nginx [--output FILE]`: write the site (default var/nginx/SERVER_NAME.conf) and check it."""
    text = render(cfg)
    target = Path(output) if output else cfg.var.nginx_dir / f"{server_name(cfg)}.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    info(f"nginx: wrote {target}")
    cert = Path(str(cfg.get("nginx.ssl_certificate") or ""))
    if cfg.get("nginx.ssl_certificate") and not cert.exists():
        warn(f"nginx.ssl_certificate {cert} does not exist (yet): nginx -t fails until it does")
    checked = check(target)
    if checked:
        info(f"nginx: `{checked} -t` accepts it; install it with: ln -s {target.absolute()} "
             "/etc/nginx/sites-enabled/ && nginx -s reload")
    else:
        info("nginx: nginx is not installed here, so the site was not checked (apt-get install nginx)")
    print(target)
    return 0
