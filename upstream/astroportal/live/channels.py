"""Messages about matched events: e-mail (SMTP from `notifications.smtp.*`) and webhooks (a JSON POST whose
`text` field chat services show). Webhook URLs to loopback, private or otherwise non-public addresses are
refused, when the subscription is made and again before each POST (the name may resolve elsewhere later),
unless listed in `notifications.webhook_allow` ("host" or "host:port")."""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
import urllib.error
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ApiError

USER_AGENT = "astroportal-notifications"


def base_url(cfg: Config) -> str:
    """The portal's public address, for links in messages."""
    return (cfg.get("server.url") or f"http://{cfg.get('server.host')}:{cfg.get('server.port')}").rstrip("/")


def check_webhook_url(cfg: Config, url: str) -> str:
    """`url` if a webhook may be sent there; ApiError(400) saying why not otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ApiError(400, "a webhook subscription needs webhook_url (an http or https URL)")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, f"webhook_url {url!r} must be an http:// or https:// URL with a host name")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ApiError(400, f"webhook_url {url!r} has an invalid port") from None
    host = parts.hostname
    allowed = {str(a).lower() for a in (cfg.get("notifications.webhook_allow") or [])}
    if host.lower() in allowed or f"{host.lower()}:{port}" in allowed:
        return url
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ApiError(400, f"webhook_url host {host!r} cannot be resolved ({exc.strerror}); check the address") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise ApiError(400, f"webhook_url {url!r} points to a loopback, private or reserved address ({ip}); "
                                "webhooks are sent to public addresses only (an administrator may allow a host "
                                "in notifications.webhook_allow)")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead to an address the check above refused: treat it as a failure instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class DeliveryFailed(Exception):
    """A message could not be sent now (it is retried later)."""


def send_webhook(cfg: Config, url: str, payload: dict, timeout: float = 10.0) -> None:
    check_webhook_url(cfg, url)
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            if not 200 <= resp.status < 300:
                raise DeliveryFailed(f"webhook answered HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryFailed(f"webhook unreachable: {getattr(exc, 'reason', exc)}") from None


def send_email(cfg: Config, to: str, subject: str, body: str, unsubscribe_url: str | None) -> None:
    host = cfg.get("notifications.smtp.host")
    if not host:
        raise DeliveryFailed("no SMTP server configured (notifications.smtp.host)")
    msg = EmailMessage()
    msg["From"] = cfg.get("notifications.smtp.from_address") or "astroportal@localhost"
    msg["To"] = to
    msg["Subject"] = subject
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg.set_content(body)
    port = int(cfg.get("notifications.smtp.port") or 25)
    timeout = float(cfg.get("notifications.smtp.timeout_seconds") or 10)
    try:
        cls = smtplib.SMTP_SSL if cfg.get("notifications.smtp.ssl") else smtplib.SMTP
        with cls(host, port, timeout=timeout) as smtp:
            if cfg.get("notifications.smtp.starttls"):
                smtp.starttls()
            if cfg.get("notifications.smtp.username"):
                smtp.login(cfg.get("notifications.smtp.username"), cfg.get("notifications.smtp.password") or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {host}:{port}: {exc}") from None
