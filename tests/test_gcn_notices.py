"""The GCN service's reading of Kafka messages, on the real sample notices: which format, which event, which
notice type, and whether it is skipped (mock and test events, optionally non-significant ones) or sent; what
is not a notice is refused with a reason (it goes to the dead letters); and the service's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gcn_support import FERMI, GW_VOEVENT, PRELIMINARY, RETRACTION, SWIFT, gwalert, import_client, real_event

from conftest import CODE_ROOT

import_client()
from gcn_client import config as configmod  # noqa: E402
from gcn_client.kafka_source import consumer_config  # noqa: E402
from gcn_client.notices import NoticeError, read_notice, skip_reason  # noqa: E402

DEFAULTS = dict(skip_test_events=True, significant_only=False)


def test_the_sample_preliminary_alert_is_an_mdc_mock_and_is_skipped():
    n = read_notice(PRELIMINARY.read_bytes())
    assert (n.kind, n.content_type, n.event_id, n.notice_type) == \
        ("igwn.gwalert", "application/json", "MS260605l", "PRELIMINARY")
    assert n.search == "MDC" and n.significant is True
    assert n.body == PRELIMINARY.read_bytes()  # sent as received: the portal's fingerprint of it is the same
    assert "mock" in skip_reason(n, **DEFAULTS)
    assert skip_reason(n, skip_test_events=False, significant_only=False) is None


@pytest.mark.parametrize("superevent_id, search, skipped", [
    ("S260605l", "AllSky", False),
    ("MS260605l", "AllSky", True),   # a mock superevent, whatever the search
    ("TS260605l", "AllSky", True),   # a test superevent
    ("S260605l", "MDC", True),       # the mock data challenge search
])
def test_real_events_are_sent_and_mock_or_test_ones_skipped(superevent_id, search, skipped):
    n = read_notice(json.dumps(gwalert(PRELIMINARY, superevent_id, event__search=search)).encode())
    assert n.event_id == superevent_id
    assert (skip_reason(n, **DEFAULTS) is not None) is skipped


def test_significant_only_leaves_out_what_says_it_is_not_significant_and_keeps_retractions():
    low = read_notice(real_event("S260606a", event__significant=False))
    high = read_notice(real_event("S260606b"))
    retraction = read_notice(real_event("S260606a", RETRACTION))
    assert retraction.notice_type == "RETRACTION" and retraction.significant is None
    strict = dict(skip_test_events=True, significant_only=True)
    assert "not significant" in skip_reason(low, **strict)
    assert skip_reason(high, **strict) is None
    assert skip_reason(retraction, **strict) is None
    assert skip_reason(low, **DEFAULTS) is None  # by default every significance is sent


def test_the_sample_retraction_is_of_the_mock_event():
    n = read_notice(RETRACTION.read_bytes())
    assert (n.event_id, n.notice_type) == ("MS260605l", "RETRACTION")
    assert "mock" in skip_reason(n, **DEFAULTS)


@pytest.mark.parametrize("path, event_id, notice_type", [
    (GW_VOEVENT, "S190425z", "Initial"),
    (FERMI, "537755817", "GBM_Gnd_Pos"),
    (SWIFT, "1125809", "BAT_GRB_Pos"),
])
def test_voevents_are_read_and_posted_as_xml(path: Path, event_id, notice_type):
    n = read_notice(path.read_bytes())
    assert (n.kind, n.content_type, n.event_id, n.notice_type, n.role) == \
        ("voevent", "application/xml", event_id, notice_type, "observation")
    assert skip_reason(n, **DEFAULTS) is None


def test_test_voevents_are_skipped():
    as_test = GW_VOEVENT.read_bytes().replace(b'role="observation"', b'role="test"')
    assert "role 'test'" in skip_reason(read_notice(as_test), **DEFAULTS)
    fermi_test = FERMI.read_bytes().replace(b'"Test_Submission"       value="false"',
                                            b'"Test_Submission"       value="true"')
    assert fermi_test != FERMI.read_bytes()
    assert "Test_Submission" in skip_reason(read_notice(fermi_test), **DEFAULTS)
    mock_gw = GW_VOEVENT.read_bytes().replace(b'value="S190425z"', b'value="MS190425z"')
    assert "mock" in skip_reason(read_notice(mock_gw), **DEFAULTS)
    assert skip_reason(read_notice(as_test), skip_test_events=False, significant_only=False) is None


@pytest.mark.parametrize("value, reason", [
    (b"", "empty"),
    (None, "empty"),
    (b"\x00\x01binary", "neither a JSON notice nor a VOEvent"),
    (b"[1, 2]", "neither"),
    (b'{"alert_type": "PRELIMINARY"', "not valid JSON"),
    (b'{"alert_type": "PRELIMINARY"}', "no superevent_id"),
    (b"<html><body>hello</body></html>", "not a VOEvent"),
    (b"<voe:VOEvent xmlns:voe='x'><What>", "not well-formed XML"),
])
def test_what_is_not_a_notice_is_refused_with_a_reason(value, reason):
    with pytest.raises(NoticeError, match=reason):
        read_notice(value)


def defaults_tree() -> dict:
    return yaml.safe_load((CODE_ROOT / "config.defaults.yaml").read_text())


def test_the_service_is_off_until_gcn_servers_and_credentials_are_configured():
    s = configmod.from_tree(defaults_tree())
    assert s.kafka.topics == ["igwn.gwalert"]
    assert s.skip_test_events is True and s.significant_only is False
    with pytest.raises(configmod.ConfigError, match="services.gcn.kafka.servers is not set"):
        configmod.check_kafka(s)
    tree = defaults_tree()
    tree["services"]["gcn"]["kafka"]["servers"] = "kafka.gcn.nasa.gov"
    with pytest.raises(configmod.ConfigError, match="client_id is not set.*gcn.nasa.gov/quickstart"):
        configmod.check_kafka(configmod.from_tree(tree))
    tree["services"]["gcn"]["kafka"]["client_id"] = "abc"
    with pytest.raises(configmod.ConfigError, match="client_secret is not set"):
        configmod.check_kafka(configmod.from_tree(tree))
    tree["services"]["gcn"]["kafka"]["client_secret"] = "xyz"
    configmod.check_kafka(configmod.from_tree(tree))
    plain = defaults_tree()
    plain["services"]["gcn"]["kafka"].update(servers="127.0.0.1:9092", security_protocol="plaintext")
    configmod.check_kafka(configmod.from_tree(plain))


@pytest.mark.parametrize("key, value, message", [
    ("significant_only", "yes", "services.gcn.significant_only: expected true or false"),
    ("http_timeout", 0, "services.gcn.http_timeout: expected a number >= 1"),
    ("kafka", {"topics": [""]}, "services.gcn.kafka.topics: expected a list"),
    ("kafka", {"auto_offset_reset": "smallest"}, "services.gcn.kafka.auto_offset_reset"),
])
def test_a_wrong_setting_is_named(key, value, message):
    tree = defaults_tree()
    g = tree["services"]["gcn"]
    if isinstance(value, dict):
        g[key].update(value)
    else:
        g[key] = value
    with pytest.raises(configmod.ConfigError, match=message):
        configmod.from_tree(tree)


def test_the_consumer_commits_by_hand_takes_1_mb_alerts_and_signs_in_to_gcn_with_oidc():
    tree = defaults_tree()
    tree["services"]["gcn"]["kafka"].update(servers="kafka.gcn.nasa.gov", client_id="abc", client_secret="xyz")
    conf, kwargs = consumer_config(configmod.from_tree(tree).kafka)
    assert conf["enable.auto.commit"] is False and conf["enable.auto.offset.store"] is False
    assert conf["message.max.bytes"] >= 2 * len(PRELIMINARY.read_bytes())
    assert conf["fetch.max.bytes"] >= conf["message.max.bytes"]
    assert kwargs == {"client_id": "abc", "client_secret": "xyz", "domain": "gcn.nasa.gov"}
    import gcn_kafka.core

    signed = gcn_kafka.core.get_config("consumer", conf, **kwargs)
    assert signed["security.protocol"] == "sasl_ssl" and signed["sasl.mechanisms"] == "OAUTHBEARER"
    assert signed["sasl.oauthbearer.token.endpoint.url"] == "https://auth.gcn.nasa.gov/oauth2/token"
    assert signed["bootstrap.servers"] == "kafka.gcn.nasa.gov"
