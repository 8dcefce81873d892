"""The broker client refuses settings that cannot work, naming the key and what to put there (exit 2), before it
touches the portal or any source."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from broker_support import SERVICE_DIR

from conftest import PYTHON


@pytest.mark.parametrize("broker, message", [
    ({"batches_in_flight": 9}, "services.broker.batches_in_flight: at most 4"),
    ({"batches_in_flight": 0}, "services.broker.batches_in_flight: expected a number >= 1, got 0"),
    ({"batch_size": 5000}, "services.broker.batch_size: at most 1000"),
    ({"source": "carrier-pigeon"}, "services.broker.source: expected one of kafka, rest, files"),
    ({"group_names": [""]}, "services.broker.group_names: expected a list of names"),
])
def test_a_setting_that_cannot_work_is_refused_naming_its_key(tmp_path, broker, message):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"services": {"broker": broker}, "paths": {"var": str(tmp_path / "var")}}))
    res = subprocess.run([PYTHON, "-m", "broker_client", "status", "--config", str(cfg)], cwd=SERVICE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert not (tmp_path / "var").exists()  # nothing written
