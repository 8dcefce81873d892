"""Admin commands on a running instance: set_user_role (and --list) and load_data."""

import requests


def roles(inst) -> dict[str, str]:
    res = inst.run("set_user_role", "--list")
    assert res.returncode == 0, res.stderr
    return dict(line.split("\t", 1) for line in res.stdout.strip().splitlines())


def test_set_user_role_and_list(running):
    assert roles(running)["admin"] == "Super admin"
    # The only Super admin: demoting them would leave nobody to give roles; the portal refuses without --force.
    res = running.run("set_user_role", "--user", "admin", "--role", "Group admin")
    assert res.returncode == 1 and "admin is the last Super admin" in res.stderr and "--force" in res.stderr
    assert roles(running)["admin"] == "Super admin"
    res = running.run("set_user_role", "--user", "admin", "--role", "Group admin", "--force")
    assert res.returncode == 0 and res.stdout.strip() == "admin: Group admin"
    assert roles(running)["admin"] == "Group admin"
    res = running.run("set_user_role", "--user", "admin", "--role", "Super admin")
    assert res.returncode == 0
    assert roles(running)["admin"] == "Super admin"


def test_set_user_role_bad_input(running):
    res = running.run("set_user_role", "--user", "nobody", "--role", "Full user")
    assert res.returncode == 1 and "no user named 'nobody'" in res.stderr
    res = running.run("set_user_role", "--user", "admin", "--role", "Emperor")
    assert res.returncode == 1 and "no role named 'Emperor'" in res.stderr and "Full user" in res.stderr
    assert roles(running)["admin"] == "Super admin"
    # The arguments are the portal's to check (one check, in the portal's set_user_role).
    res = running.run("set_user_role", "--user", "admin")
    assert res.returncode == 2 and "give --user NAME and --role ROLE" in res.stderr


def _telescopes(inst, token) -> list[str]:
    r = requests.get(inst.url + "/api/telescope", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    rows = data if isinstance(data, list) else data.get("telescopes", [])
    return [t["name"] for t in rows]


def test_load_data_from_data_dir_and_from_a_file(running, tmp_path):
    token = running.run("token").stdout.strip()
    (running.data / "telescopes.yaml").write_text(
        "telescope:\n"
        "  - name: Launcher Test Telescope\n    nickname: LTT\n    lat: 43.75\n    lon: 6.92\n"
        "    elevation: 1320.0\n    diameter: 0.25\n    robotic: true\n    fixed_location: true\n    =id: LTT\n"
    )
    # named to sort first, though it refers to the telescope: the launcher orders files by their references
    (running.data / "a_instruments.yaml").write_text(
        "instrument:\n  - name: Launcher Test Camera\n    type: imager\n    band: optical\n"
        "    telescope_id: =LTT\n    filters: [ztfg]\n"
    )
    try:
        res = running.run("load_data")
        assert res.returncode == 0, res.stderr
        assert "Launcher Test Telescope" in _telescopes(running, token)
        r = requests.get(running.url + "/api/instrument", headers={"Authorization": f"token {token}"}, timeout=10)
        assert "Launcher Test Camera" in r.text
        # loading again is harmless (the loader is idempotent)
        assert running.run("load_data").returncode == 0
        assert _telescopes(running, token).count("Launcher Test Telescope") == 1
    finally:
        (running.data / "telescopes.yaml").unlink()
        (running.data / "a_instruments.yaml").unlink()
    extra = tmp_path / "more.yaml"
    extra.write_text(
        "telescope:\n"
        "  - name: Second Test Telescope\n    nickname: STT\n    lat: -29.26\n    lon: -70.73\n"
        "    elevation: 2398.0\n    diameter: 0.25\n    robotic: true\n    fixed_location: true\n"
    )
    res = running.run("load_data", str(extra))
    assert res.returncode == 0, res.stderr
    assert "Second Test Telescope" in _telescopes(running, token)


def test_load_data_bad_input(running, tmp_path):
    token = running.run("token").stdout.strip()
    before = _telescopes(running, token)
    bad = tmp_path / "bad.yaml"
    bad.write_text("telescope:\n  - name: Broken\n    lat: [1,\n")
    res = running.run("load_data", str(bad))
    assert res.returncode == 2 and f"{bad.resolve()}:" in res.stderr and "invalid YAML" in res.stderr
    out_of_range = tmp_path / "far.yaml"
    out_of_range.write_text("telescope:\n  - {name: Far, nickname: F, lat: 91, lon: 0, elevation: 1, diameter: 1}\n")
    res = running.run("load_data", str(out_of_range))
    assert res.returncode == 2 and "`lat` must be between -90 and 90 degrees, got 91" in res.stderr
    res = running.run("load_data", str(tmp_path / "absent.yaml"))
    assert res.returncode == 2 and "no such file" in res.stderr
    assert _telescopes(running, token) == before
