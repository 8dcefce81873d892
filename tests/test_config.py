"""Layered configuration: order of layers, deep merge, key removal, environment, errors, secrets."""

import os
import stat

import yaml


def effective(tree, key, **env):
    res = tree.run("config", key, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_layers_merge_deeply_in_order(tree):
    tree.write("upstream/config.defaults.yaml",
               "server:\n  host: 127.0.0.1\n  port: 5000\n  auth:\n    debug_login: true\n"
               "    default_role: Full user\n")
    tree.write("config.defaults.yaml", "server:\n  port: 5100\n  auth:\n    debug_login: false\n")
    tree.write("config.yaml", "server:\n  port: 5200\n")
    assert effective(tree, "server.host") == "server.host: 127.0.0.1  # upstream (upstream/config.defaults.yaml)"
    assert effective(tree, "server.auth.debug_login") == \
        "server.auth.debug_login: false  # distribution (config.defaults.yaml)"
    assert effective(tree, "server.auth.default_role").startswith("server.auth.default_role: Full user  # upstream")
    assert effective(tree, "server.port") == "server.port: 5200  # local (config.yaml)"
    assert effective(tree, "server.port", PORTAL__SERVER__PORT="5300") == \
        "server.port: 5300  # env PORTAL__SERVER__PORT"


def test_environment_values_are_yaml_and_match_existing_keys(tree):
    tree.write("upstream/config.defaults.yaml", "server:\n  auth:\n    google-oauth2:\n      key: null\n")
    out = effective(tree, "server.auth.google-oauth2.key", PORTAL__SERVER__AUTH__GOOGLE_OAUTH2__KEY="abc")
    assert out == "server.auth.google-oauth2.key: abc  # env PORTAL__SERVER__AUTH__GOOGLE_OAUTH2__KEY"
    tree.write("config.defaults.yaml", "services:\n  disabled: []\n")
    out = effective(tree, "services.disabled", PORTAL__SERVICES__DISABLED="[broker, solver]")
    assert out.startswith("services.disabled: [broker, solver]")


def test_mapping_key_lists_its_leaves(tree):
    tree.write("config.yaml", "server:\n  port: 5200\n")
    out = effective(tree, "server")
    assert "server.host: 127.0.0.1  # upstream" in out and "server.port: 5200  # local (config.yaml)" in out


def test_delete_tag_removes_a_key_and_reaches_the_portal_as_null(tree):
    tree.write("upstream/config.defaults.yaml", "server:\n  port: 5000\n  url: http://portal.example\n"
                                                "database:\n  url: postgresql://x@127.0.0.1/x\n")
    tree.write("config.defaults.yaml", "extra:\n  a: 1\n  b: 2\n")
    tree.write("config.yaml", "server:\n  url: !delete\nextra:\n  b: !delete\n")
    res = tree.run("config", "server.url")
    assert res.returncode == 0 and res.stdout.strip() == "server.url: (removed by local (config.yaml))"
    res = tree.run("config")
    assert "# server.url: removed by local (config.yaml)" in res.stdout and "extra.a: 1" in res.stdout
    assert "extra.b" not in res.stdout.replace("# extra.b: removed", "")
    tree.build()
    written = yaml.safe_load((tree.patched / "config.yaml").read_text())
    # the portal lays the file over its own defaults: a key it knows must arrive as null to stay removed
    assert written["server"]["url"] is None
    assert written["extra"] == {"a": 1}
    # an environment variable can delete too
    res = tree.run("config", "extra.a", env={"PORTAL__EXTRA__A": "!delete"})
    assert "removed by env PORTAL__EXTRA__A" in res.stdout


def test_unknown_key_suggests_close_ones(tree):
    res = tree.run("config", "server.prot")
    assert res.returncode == 1 and "no key 'server.prot'" in res.stderr and "server.port" in res.stderr


def test_invalid_yaml_names_file_and_line_and_changes_nothing(tree):
    tree.build()
    before = (tree.patched / "config.yaml").read_bytes()
    tree.write("config.yaml", "server:\n  port: 5001\n  host: [unclosed\n")
    for cmd in (["config"], ["build"], ["run"]):
        res = tree.run(*cmd)
        assert res.returncode == 2, cmd
        assert f"{tree.root / 'config.yaml'}:" in res.stderr and "invalid YAML" in res.stderr
    assert (tree.patched / "config.yaml").read_bytes() == before


def test_invalid_yaml_in_environment_names_the_variable(tree):
    res = tree.run("config", env={"PORTAL__SERVER__PORT": "[1, 2"})
    assert res.returncode == 2 and "environment variable PORTAL__SERVER__PORT" in res.stderr


def test_top_level_must_be_a_mapping(tree):
    tree.write("config.yaml", "- a\n- b\n")
    res = tree.run("config")
    assert res.returncode == 2 and "config.yaml: expected a mapping" in res.stderr


def test_bad_value_names_key_and_layer(tree):
    res = tree.run("build", env={"PORTAL__DATABASE__EMBEDDED__PORT": "lots"})
    assert res.returncode == 2
    assert "database.embedded.port" in res.stderr and "env PORTAL__DATABASE__EMBEDDED__PORT" in res.stderr


def test_secrets_are_masked_and_kept_out_of_tracked_files(tree):
    tree.write("config.yaml", "server:\n  cookie_secret: s3cr3t\n")
    out = effective(tree, "server.cookie_secret")
    assert "s3cr3t" not in out and "********" in out
    res = tree.run("config", "server.cookie_secret", "--show-secrets")
    assert "s3cr3t" in res.stdout
    # the embedded database's password is generated into var/ (0600) by the first build, and hidden in the URL
    assert "generated by the first build" in effective(tree, "database.url")
    res = tree.build()
    assert "warning" not in res.stderr
    out = effective(tree, "database.url")
    assert f"********@127.0.0.1:{tree.db_port}" in out
    creds = tree.root / "var" / "db-credentials.yaml"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    password = yaml.safe_load(creds.read_text())["password"]
    assert password not in out
    assert password in yaml.safe_load((tree.patched / "config.yaml").read_text())["database"]["url"]
    tree.write("config.defaults.yaml", "server:\n  cookie_secret: committed\n")
    res = tree.build()
    assert "a secret is set in a tracked file: server.cookie_secret in distribution" in res.stderr


def test_external_database_url_turns_off_the_embedded_database(tree):
    out = effective(tree, "database.url", PORTAL__DATABASE__URL="postgresql://me:pw@db.example:5432/portal")
    assert out.endswith("# env PORTAL__DATABASE__URL") and "pw" not in out


def test_var_dir_is_absolute_and_portal_var_wins(tree, tmp_path):
    assert effective(tree, "paths.var").startswith(f"paths.var: {tree.root / 'var'}")
    other = tmp_path / "elsewhere"
    assert effective(tree, "paths.var", PORTAL_VAR=str(other)) == f"paths.var: {other}  # env PORTAL_VAR"


def test_config_on_a_fresh_root_creates_nothing(tree):
    before = sorted(p.relative_to(tree.root) for p in tree.root.rglob("*"))
    for args in (["config"], ["config", "database.url"], ["config", "--show-secrets"], ["status"], ["stop"]):
        tree.run(*args)
    assert sorted(p.relative_to(tree.root) for p in tree.root.rglob("*")) == before
    assert not (tree.root / "var").exists()


def test_a_mistyped_environment_variable_is_refused_with_the_closest_key(tree):
    tree.build()
    config_before = (tree.patched / "config.yaml").read_bytes()
    for cmd in (["config"], ["build"], ["run"]):
        res = tree.run(*cmd, env={"PORTAL__SERVER__PROT": "5001"})
        assert res.returncode == 2, (cmd, res.stderr)
        assert "PORTAL__SERVER__PROT: no configuration key 'server.prot'" in res.stderr
        assert "did you mean PORTAL__SERVER__PORT (server.port)" in res.stderr
    assert (tree.patched / "config.yaml").read_bytes() == config_before
    # Keys under a mapping the files leave empty are free (PostgreSQL settings, say).
    tree.write("config.defaults.yaml", "database:\n  embedded:\n    settings: {}\n")
    out = effective(tree, "database.embedded.settings.work_mem", PORTAL__DATABASE__EMBEDDED__SETTINGS__WORK_MEM="64MB")
    assert out.startswith("database.embedded.settings.work_mem: 64MB")
