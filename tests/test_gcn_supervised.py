"""The GCN service as supervisord runs it with the portal (`./run.sh run`): it gets its own token (its bot holds
exactly Manage GCNs), and, left unconfigured (the defaults name no GCN servers or credentials), it stays up idle
and says what to set instead of crash-looping."""

from __future__ import annotations

import json

import requests

from conftest import wait_until


def test_run_starts_the_gcn_service_which_idles_until_gcn_is_configured(running):
    def gcn_state() -> dict:
        res = running.run("gcn", "status", "--json")
        return (json.loads(res.stdout)["status"] or {}) if res.stdout.strip() else {}

    assert wait_until(lambda: gcn_state().get("state") == "not configured", 60), running.run("log", "gcn").stdout
    text = running.run("gcn", "status").stdout
    assert "services.gcn.kafka.servers is not set" in text
    token_file = running.var / "tokens" / "gcn.token"
    conf = (running.var / "run" / "supervisord.conf").read_text()
    assert f"--token-file {token_file}" in conf
    # The token is the service's own, good for the API, and its bot holds exactly what service.yaml says.
    me = requests.get(running.url + "/api/internal/profile", timeout=30,
                      headers={"Authorization": f"token {token_file.read_text().strip()}"})
    assert me.ok, me.text
    assert me.json()["data"]["acls"] == ["Manage GCNs"]
    pid = gcn_state()["pid"]
    assert not wait_until(lambda: gcn_state().get("pid") != pid, 8)  # the same process: no crash loop
