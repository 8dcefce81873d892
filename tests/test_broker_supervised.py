"""The broker client as supervisord runs it with the portal (`./run.sh run`): started with its own token file
placeholder, and, left unconfigured, it stays up and says what to set instead of crash-looping."""

from __future__ import annotations

import json

from conftest import wait_until


def test_run_starts_the_broker_which_waits_for_its_configuration(running):
    def broker_state() -> dict:
        res = running.run("broker", "status", "--json")
        return (json.loads(res.stdout)["status"] or {}) if res.stdout.strip() else {}

    assert wait_until(lambda: broker_state().get("state") == "not configured", 60), running.run("log", "broker").stdout
    def supervised_state() -> str:
        out = running.run("status").stdout
        return out.split("broker", 1)[1].splitlines()[0] if "broker" in out else out

    # supervisord says RUNNING once the process has lived its startsecs, which may be after its first status.
    assert wait_until(lambda: "RUNNING" in supervised_state(), 30), supervised_state()
    text = running.run("broker", "status").stdout
    assert "services.broker.kafka.servers is not set" in text
    conf = (running.var / "run" / "supervisord.conf").read_text()
    assert f"--token-file {running.var / 'tokens' / 'broker.token'}" in conf
    # still the same process a while later: no crash loop
    pid = broker_state()["pid"]
    assert not wait_until(lambda: broker_state().get("pid") != pid, 8)
