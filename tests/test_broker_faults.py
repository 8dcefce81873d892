"""The broker client against a portal that misbehaves (through a loopback proxy): 500s, a 429 with Retry-After,
a request that outlives the timeout. Each case ends with every alert present exactly once and nothing lost."""

from __future__ import annotations

import pytest
from broker_support import (
    GROUP,
    BrokerPortal,
    FaultProxy,
    Service,
    admin_setup,
    declared_acls,
    expected_points,
    service_config,
    service_token,
    synth,
    write_avro,
)


@pytest.fixture(scope="module")
def portal():
    p = BrokerPortal()
    bot_id, p.token_file = service_token(p)
    admin_setup(p, bot_id)
    yield p
    p.stop()


@pytest.fixture
def proxy(portal):
    fp = FaultProxy(portal.url)
    yield fp
    fp.stop()


def replay(portal, proxy, tmp_path, tag: str, n: int = 30, **settings):
    schema, alerts = synth(n, tag, prv_points=10)
    path = write_avro(tmp_path / f"{tag}.avro", schema, alerts)
    settings = {"group_names": [GROUP], "batch_size": 10, "backoff_seconds": 0.1, "backoff_max_seconds": 1,
                **settings}
    cfg = service_config(portal, tmp_path / "state", **settings)
    res = Service(cfg, portal.token_file, proxy.url).run("replay", str(path))
    return res, alerts


def assert_once(portal, tag: str, alerts) -> None:
    counts = portal.counts(f"ZTF{tag}")
    assert counts == {"objs": len(alerts), "sources": len(alerts), "candidates": len(alerts),
                      "photometry": sum(map(expected_points, alerts)), "classifications": 0,
                      "thumbnails": 3 * len(alerts)}


def test_500s_are_retried_and_nothing_is_lost(portal, proxy, tmp_path):
    proxy.rules.append({"method": "POST", "path": "/api/sources", "times": 3, "status": 500})
    res, alerts = replay(portal, proxy, tmp_path, "F5A")
    assert res.returncode == 0, res.stderr
    assert "HTTP 500" in res.stderr
    assert [s for _, m, p, s in proxy.log if p.startswith("/api/sources")].count(500) == 3
    assert_once(portal, "F5A", alerts)


def test_429_waits_at_least_retry_after(portal, proxy, tmp_path):
    proxy.rules.append({"method": "PUT", "path": "/api/photometry", "times": 1, "status": 429, "retry_after": "2"})
    # One batch at a time: the PUT after the 429 is then its retry, not another batch's (which the client also
    # holds back until the Retry-After has passed, but which may have been sent before the 429 came back).
    res, alerts = replay(portal, proxy, tmp_path, "F4A", batches_in_flight=1)
    assert res.returncode == 0, res.stderr
    puts = [(t, s) for t, m, p, s in proxy.log if m == "PUT" and p.startswith("/api/photometry")]
    assert puts[0][1] == 429 and puts[1][1] == 200
    assert puts[1][0] - puts[0][0] >= 2.0  # backoff alone would have waited about 0.1 s
    assert_once(portal, "F4A", alerts)


def test_a_request_past_the_timeout_is_sent_again_without_duplicates(portal, proxy, tmp_path):
    # The slow request still reaches the portal after the client gave up on it: both copies are written.
    proxy.rules.append({"method": "POST", "path": "/api/candidates", "times": 1, "delay": 4})
    res, alerts = replay(portal, proxy, tmp_path, "FTA", http_timeout=1)
    assert res.returncode == 0, res.stderr
    assert "no answer within 1 s" in res.stderr
    assert_once(portal, "FTA", alerts)


def test_a_portal_that_is_down_fails_a_replay_with_a_clear_message(portal, tmp_path):
    from conftest import free_port

    class Down:
        url = f"http://127.0.0.1:{free_port()}"

    res, _ = replay(portal, Down, tmp_path, "FDA", n=2, backoff_max_seconds=0.5)
    assert res.returncode == 3
    assert "unreachable" in res.stderr and "./run.sh run" in res.stderr


def test_a_bot_that_only_joined_its_group_says_which_admin_step_its_filter_needs(portal, tmp_path):
    """Manage groups counts only in groups the bot administers: a bot that joined the broker's group as a plain
    member cannot create the filter there, and the replay says what an admin does, without writing an alert."""
    import os

    answer = portal.api("POST", "/api/service_tokens", {"name": "brokermember", "acls": declared_acls(),
                                                       "groups": [GROUP]})
    token_file = tmp_path / "member.token"
    token_file.write_text(answer["token"] + "\n")
    os.chmod(token_file, 0o600)
    schema, alerts = synth(2, "FMB", prv_points=2)
    path = write_avro(tmp_path / "member.avro", schema, alerts)
    cfg = service_config(portal, tmp_path / "state", group_names=[GROUP], filter_name="Fink members",
                         backoff_seconds=0.1, backoff_max_seconds=0.5)
    res = Service(cfg, token_file, portal.url).run("replay", str(path))
    assert res.returncode == 3, res.stderr
    assert "cannot create the candidate filter 'Fink members'" in res.stderr
    assert "makes the broker's user one of its admins" in res.stderr
    assert portal.counts("ZTFFMB")["objs"] == 0
