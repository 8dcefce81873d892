"""Subscriptions and their notifications with the real parts: two portal processes on one database, an SMTP
server on loopback (aiosmtpd) and a loopback HTTP server receiving webhooks.

A member of group A is never told about a source only in group B (bell, page, e-mail, webhook); each event
reaches each subscription at most once although both processes see it; matches within the grouping time make
one message; a failing SMTP server or webhook is retried and recorded while the writes go on.
"""

from __future__ import annotations

import email
import json
import threading
import time
import uuid
from urllib.parse import urlsplit
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import text

from conftest import free_port, unique
from livehelpers import post, save_source, start_portals, wait_for

GROUP_SECONDS = 3


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


class Hooks(BaseHTTPRequestHandler):
    received: list[dict] = []
    fail_next = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.fail_next > 0:
            cls.fail_next -= 1
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"down for maintenance")
            return
        cls.received.append({"path": self.path, **body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory):
    mailbox = Mailbox()
    smtp_port, hook_port = free_port(), free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hooks = ThreadingHTTPServer(("127.0.0.1", hook_port), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    ns = start_portals(
        pg, tmp_path_factory.mktemp("subs"), "live_subscriptions_test",
        notifications__group_seconds=GROUP_SECONDS, notifications__poll_seconds=0.3,
        notifications__retry_base_seconds=1, notifications__max_attempts=4,
        notifications__webhook_allow=[f"127.0.0.1:{hook_port}"],
        notifications__smtp={"host": "127.0.0.1", "port": smtp_port, "from_address": "portal@example.org"},
    )
    ns.mailbox, ns.smtp, ns.smtp_port = mailbox, smtp, smtp_port
    ns.hook_url = f"http://127.0.0.1:{hook_port}"
    yield ns
    for s in ns.servers:
        s.stop()
    hooks.shutdown()
    try:
        ns.smtp.stop()
    except Exception:  # noqa: BLE001 - already stopped by a test
        pass


def subscribe(env, token, kind, params, channels=("portal",), **extra) -> dict:
    r = requests.post(env.a.url + "/api/subscriptions", headers={"Authorization": f"token {token}"},
                      json={"kind": kind, "params": params, "channels": list(channels), **extra}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def notifications(env, token, server=None) -> dict:
    r = requests.get((server or env.b).url + "/api/notifications", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def processed(env, obj_id) -> bool:
    """Every event about obj_id has been matched against the subscriptions."""
    with env.db() as s:
        return s.execute(text("SELECT count(*) > 0 AND bool_and(processed_at IS NOT NULL) FROM live_events "
                              "WHERE obj_id = :o"), {"o": obj_id}).scalar()


def comment(env, obj_id, words, group_id):
    post(env.a, env.admin, f"/api/sources/{obj_id}/comments", {"text": words, "group_ids": [group_id]})


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,status,words", [
    ({"kind": "cone", "params": {"ra": 400, "dec": 0, "radius": 1}}, 400, "ra 400.0 is out of range"),
    ({"kind": "cone", "params": {"ra": 10, "dec": -91, "radius": 1}}, 400, "dec -91.0 is out of range"),
    ({"kind": "cone", "params": {"ra": 10, "dec": 0, "radius": 0}}, 400, "radius 0.0 is out of range"),
    ({"kind": "classification", "params": {"classification": "Unicorn"}}, 400, "unknown class 'Unicorn'"),
    ({"kind": "source", "params": {"obj_id": "ZTF00nothere"}}, 404, "not found"),
    ({"kind": "group_candidates", "params": {"group_id": 999999}}, 404, "group 999999 not found"),
    ({"kind": "horoscope", "params": {}}, 400, "unknown subscription kind"),
    ({"kind": "event", "params": {"event_kind": "Solve Jobs"}}, 400, "event_kind"),
    ({"kind": "cone", "params": {"ra": 1, "dec": 1, "radius": 1}, "channels": ["webhook"],
      "webhook_url": "http://127.0.0.1:9/x"}, 400, "loopback, private or reserved address (127.0.0.1)"),
    ({"kind": "cone", "params": {"ra": 1, "dec": 1, "radius": 1}, "channels": ["webhook"],
      "webhook_url": "http://10.20.30.40/hook"}, 400, "(10.20.30.40)"),
    ({"kind": "cone", "params": {"ra": 1, "dec": 1, "radius": 1}, "channels": ["webhook"],
      "webhook_url": "http://[::1]:8080/hook"}, 400, "(::1)"),
    ({"kind": "cone", "params": {"ra": 1, "dec": 1, "radius": 1}, "channels": ["webhook"],
      "webhook_url": "file:///etc/passwd"}, 400, "must be an http:// or https:// URL"),
    ({"kind": "cone", "params": {"ra": 1, "dec": 1, "radius": 1}, "channels": ["pigeon"]}, 400, "channels must be"),
])
def test_bad_subscriptions_are_refused_with_the_reason(env, body, status, words):
    r = requests.post(env.a.url + "/api/subscriptions", headers={"Authorization": f"token {env.alice}"}, json=body,
                      timeout=10)
    assert r.status_code == status and words in r.json()["message"], r.text


def test_a_source_and_a_group_the_member_cannot_see_are_refused(env):
    hidden = save_source(env.a, env.admin, env.gb)
    r = requests.post(env.a.url + "/api/subscriptions", headers={"Authorization": f"token {env.alice}"},
                      json={"kind": "source", "params": {"obj_id": hidden}}, timeout=10)
    assert r.status_code == 404
    r = requests.post(env.a.url + "/api/subscriptions", headers={"Authorization": f"token {env.alice}"},
                      json={"kind": "group_candidates", "params": {"group_id": env.gb}}, timeout=10)
    assert r.status_code == 403 and f"not a member of group {env.gb}" in r.json()["message"]


# -- in the portal -------------------------------------------------------------------------------------------
def test_cone_subscriptions_tell_each_member_only_what_they_may_read(env):
    mine = subscribe(env, env.alice, "cone", {"ra": 100.0, "dec": 10.0, "radius": 1.0})
    subscribe(env, env.bob, "cone", {"ra": 100.0, "dec": 10.0, "radius": 1.0})
    b_only = save_source(env.a, env.admin, env.gb, ra=100.2, dec=10.1)
    a_only = save_source(env.b, env.admin, env.ga, ra=100.3, dec=10.0)
    far = save_source(env.b, env.admin, env.ga, ra=103.0, dec=10.0)
    wait_for(lambda: processed(env, b_only) and processed(env, a_only) and processed(env, far))
    alice = notifications(env, env.alice)
    bob = notifications(env, env.bob)
    assert [n["event"]["obj_id"] for n in alice["notifications"]] == [a_only]
    assert alice["unread"] == 1 and alice["notifications"][0]["subscription_name"] == mine["name"]
    assert [n["event"]["obj_id"] for n in bob["notifications"]] == [b_only]
    r = requests.get(env.a.url + "/api/notifications/count", headers={"Authorization": f"token {env.alice}"}, timeout=10)
    assert r.json()["data"] == {"unread": 1}
    r = requests.post(env.a.url + "/api/notifications/read", headers={"Authorization": f"token {env.alice}"},
                      json={}, timeout=10)
    assert r.json()["data"] == {"marked": 1}
    assert notifications(env, env.alice)["unread"] == 0
    requests.delete(env.a.url + f"/api/subscriptions/{mine['id']}", headers={"Authorization": f"token {env.alice}"},
                    timeout=10)


def test_classification_above_a_probability(env):
    tax = post(env.a, env.admin, "/api/taxonomy", {
        "name": f"live-{uuid.uuid4().hex[:6]}", "version": "1", "group_ids": [env.ga, env.gb],
        "hierarchy": {"class": "Transient", "subclasses": [{"class": "Kilonova"}, {"class": "SN Ia"}]}})["taxonomy_id"]
    sub = subscribe(env, env.alice, "classification", {"classification": "kilonova", "min_probability": 0.8})
    assert sub["params"]["classification"] == "Kilonova"
    obj_id = save_source(env.a, env.admin, env.ga)
    for cls, p in [("Kilonova", 0.5), ("SN Ia", 0.99), ("Kilonova", 0.9)]:
        post(env.b, env.admin, "/api/classification", {"obj_id": obj_id, "classification": cls, "taxonomy_id": tax,
                                                       "probability": p, "group_ids": [env.ga]})
    wait_for(lambda: processed(env, obj_id))
    got = [n["event"] for n in notifications(env, env.alice)["notifications"] if n["subscription_id"] == sub["id"]]
    assert [(e["data"]["classification"], e["data"]["probability"]) for e in got] == [("Kilonova", 0.9)]


def test_each_event_reaches_each_subscription_at_most_once(env):
    sub = subscribe(env, env.alice, "group_candidates", {"group_id": env.ga})
    stream = post(env.a, env.admin, "/api/streams", {"name": f"live-{uuid.uuid4().hex[:6]}"})["id"]
    post(env.a, env.admin, f"/api/groups/{env.ga}/streams", {"stream_id": stream})
    flt = post(env.a, env.admin, "/api/filters", {"name": "all", "stream_id": stream, "group_id": env.ga})["id"]
    objs = []
    for i in range(12):
        objs.append(unique())
        server = env.a if i % 2 else env.b  # both processes write, both see every NOTIFY
        post(server, env.admin, "/api/candidates", {"id": objs[-1], "ra": 5.0 + i, "dec": 5.0, "filter_ids": [flt],
                                                   "passed_at": "2026-01-01T00:00:00"})
    wait_for(lambda: all(processed(env, o) for o in objs))
    with env.db() as s:
        rows = s.execute(text("SELECT event_id, count(*) FROM notifications WHERE subscription_id = :s GROUP BY 1"),
                         {"s": sub["id"]}).all()
    assert len(rows) == 12 and {n for _, n in rows} == {1}


# -- e-mail and webhooks ---------------------------------------------------------------------------------------
def test_email_grouping_unsubscribe_and_never_another_groups_source(env):
    alice_mail = "alice@example.org"
    start = len(env.mailbox.to(alice_mail))
    sub = subscribe(env, env.alice, "cone", {"ra": 200.0, "dec": -40.0, "radius": 2.0, "kinds": ["source.saved"]},
                    channels=["email"])
    subscribe(env, env.bob, "cone", {"ra": 200.0, "dec": -40.0, "radius": 2.0, "kinds": ["source.saved"]},
              channels=["email"])
    hidden = save_source(env.a, env.admin, env.gb, ra=200.5, dec=-40.5)
    first = save_source(env.b, env.admin, env.ga, ra=200.1, dec=-40.1)
    mails = wait_for(lambda: env.mailbox.to(alice_mail)[start:])
    assert len(mails) == 1 and "1 new event for" in mails[0]["Subject"]
    body = mails[0].get_content()
    assert first in body and hidden not in body
    wait_for(lambda: any(hidden in m.get_content() for m in env.mailbox.to("bob@example.org")))
    # Three more within the grouping time: one message with all three, no sooner than GROUP_SECONDS later.
    sent_first = time.monotonic()
    more = [save_source(env.a if i % 2 else env.b, env.admin, env.ga, ra=199.5 + i * 0.2, dec=-40.0) for i in range(3)]
    grouped = wait_for(lambda: env.mailbox.to(alice_mail)[start + 1:], timeout=GROUP_SECONDS + 20)
    assert time.monotonic() - sent_first >= GROUP_SECONDS - 1.5
    time.sleep(1)  # a duplicate, if any, would come now
    assert len(env.mailbox.to(alice_mail)) == start + 2
    assert "3 new events" in grouped[0]["Subject"] and all(o in grouped[0].get_content() for o in more)
    # The unsubscribe link works without logging in (a confirmation first), and only with its signature.
    link = next(line for line in body.splitlines() if line.startswith("Unsubscribe: ")).split(": ", 1)[1]
    # The same link (path and signature); without server.url each app process names its own port in it.
    assert urlsplit(link).path == urlsplit(grouped[0]["List-Unsubscribe"].strip("<>")).path
    bad = requests.get(link[:-4] + "0000", timeout=10)
    assert bad.status_code == 400 and "not valid" in bad.text
    other = requests.get(link.replace(f"/unsubscribe/{sub['id']}/", f"/unsubscribe/{sub['id'] + 1}/"), timeout=10)
    assert other.status_code == 400
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and 'id="unsubscribe-confirm"' in page.text
    assert requests.post(link, timeout=10).status_code == 200
    r = requests.get(env.a.url + f"/api/subscriptions/{sub['id']}", headers={"Authorization": f"token {env.alice}"},
                     timeout=10)
    assert r.json()["data"]["active"] is False
    control = len(env.mailbox.to("bob@example.org"))
    after = save_source(env.a, env.admin, env.gb, ra=200.0, dec=-40.0)  # bob hears of it, alice no more
    wait_for(lambda: len(env.mailbox.to("bob@example.org")) > control, timeout=GROUP_SECONDS + 20)
    assert after not in "".join(m.get_content() for m in env.mailbox.to(alice_mail))
    assert len(env.mailbox.to(alice_mail)) == start + 2


def test_webhook_retried_after_a_500_and_never_told_of_another_groups_source(env):
    Hooks.received.clear()
    Hooks.fail_next = 1
    sub = subscribe(env, env.alice, "cone", {"ra": 300.0, "dec": 60.0, "radius": 1.0, "kinds": ["source.saved"]},
                    channels=["webhook", "portal"], webhook_url=env.hook_url + "/alice")
    subscribe(env, env.bob, "cone", {"ra": 300.0, "dec": 60.0, "radius": 1.0, "kinds": ["source.saved"]},
              channels=["webhook"], webhook_url=env.hook_url + "/bob")
    t0 = time.monotonic()
    hidden = save_source(env.a, env.admin, env.gb, ra=300.1, dec=60.0)
    shown = save_source(env.b, env.admin, env.ga, ra=300.2, dec=60.1)
    assert time.monotonic() - t0 < 5  # the writes never wait for the webhook
    got = wait_for(lambda: [h for h in Hooks.received if h["path"] == "/alice"], timeout=30)
    wait_for(lambda: [h for h in Hooks.received if h["path"] == "/bob"], timeout=30)
    assert shown in got[0]["text"] and hidden not in json.dumps(Hooks.received[0] if got[0] is Hooks.received[0] else got)
    assert [e["obj_id"] for e in got[0]["events"]] == [shown]
    assert all(hidden not in json.dumps(h) for h in Hooks.received if h["path"] == "/alice")
    with env.db() as s:
        attempts = s.execute(text("SELECT sum(attempts), bool_and(status = 'sent') FROM notification_deliveries "
                                  "WHERE channel = 'webhook' AND subscription_id IN "
                                  "(SELECT id FROM subscriptions WHERE webhook_url LIKE :u)"),
                             {"u": env.hook_url + "%"}).one()
    assert attempts == (3, True)  # one of the two first answered 500 and was sent again
    assert notifications(env, env.alice)["notifications"][0]["event"]["obj_id"] == shown
    del sub


def test_smtp_down_is_recorded_and_retried_until_it_is_back(env):
    sub = subscribe(env, env.alice, "cone", {"ra": 50.0, "dec": 50.0, "radius": 1.0, "kinds": ["source.saved"]},
                    channels=["email"])
    env.smtp.stop()
    try:
        obj_id = save_source(env.a, env.admin, env.ga, ra=50.2, dec=50.0)

        def failed_once():
            with env.db() as s:
                return s.execute(text("SELECT attempts, last_error, status FROM notification_deliveries "
                                      "WHERE subscription_id = :s"), {"s": sub["id"]}).first()

        row = wait_for(lambda: (r := failed_once()) and r[0] >= 1 and r)
        assert row[2] == "pending" and "SMTP 127.0.0.1" in row[1]
    finally:
        env.smtp = Controller(env.mailbox, hostname="127.0.0.1", port=env.smtp_port)
        env.smtp.start()
    mail = wait_for(lambda: [m for m in env.mailbox.to("alice@example.org") if obj_id in m.get_content()], timeout=30)
    assert len(mail) == 1
    with env.db() as s:
        assert s.execute(text("SELECT status FROM notification_deliveries WHERE subscription_id = :s"),
                         {"s": sub["id"]}).scalar() == "sent"
