"""The solve service as `./run.sh run` starts it: supervisord runs services.solve.workers worker processes with
the service's own token (var/tokens/solve.token, holding only 'Run solve jobs'), and an image sent to
<portal>/nova is solved by them."""

from __future__ import annotations

import stat

import yaml
from solve_support import NovaClient, synthetic_field

from conftest import Instance, wait_until


def test_run_starts_the_configured_number_of_workers_and_they_solve():
    inst = Instance()
    try:
        config = yaml.safe_load((inst.root / "config.yaml").read_text())
        config["services"] = {"solve": {"workers": 3}}
        (inst.root / "config.yaml").write_text(yaml.safe_dump(config))
        inst.ensure_running()
        status = inst.run("status")
        assert status.returncode == 0, status.stderr
        workers = [line for line in status.stdout.splitlines() if line.strip().startswith("solve")]
        assert len(workers) == 3 and all("RUNNING" in line for line in workers), status.stdout
        token_file = inst.var / "tokens" / "solve.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        admin = inst.run("token").stdout.strip()
        assert token_file.read_text().strip() != admin

        data, _ = synthetic_field(150.0, 20.0, seed=11)
        client = NovaClient(inst.url + "/nova", admin)
        assert client.login()["status"] == "success"
        answer = client.upload(data, "run.fits", scale_units="arcsecperpix", scale_lower=6, scale_upper=8)
        assert answer.status_code == 200, answer.text
        job_id, result = client.wait_job(answer.json()["subid"], timeout=300)
        assert result == "success"
        # The results are kept under the instance's var/ (paths.var).
        assert (inst.var / "solve" / "jobs" / str(job_id) / "wcs.fits").is_file()
        assert wait_until(lambda: not any((inst.var / "solve-scratch").iterdir()), 10)
    finally:
        inst.cleanup()
