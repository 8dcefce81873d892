"""`python -m gcn_client [run|ingest FILE...|status] --config FILE --token-file FILE [--url URL]`: the GCN service.

run     the daemon (supervised): GCN's Kafka topics (services.gcn.kafka) into the portal's POST /api/gcn_event;
        idle, saying what to set, until services.gcn.kafka.servers (and GCN's client credentials) are configured
ingest  notice files (igwn.gwalert JSON or VOEvent XML) posted by hand through the same API, saying what the
        portal made of each; exit 1 if any was refused
status  the source, committed offsets and lag per partition, the last notice, the last error, dead letters
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

from service_common.process import alive as pid_alive
from service_common.process import command_line, install_stop_signals

from . import config as configmod
from .delivery import Delivery
from .notices import NoticeError, is_test, read_notice
from .portal import Portal, PortalError, Stopping
from .state import DeadLetters, Status, read_status

log = logging.getLogger("gcn")
LAG_EVERY = 30.0  # seconds between lag measurements while no message comes


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gcn_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=["run", "ingest", "status"])
    p.add_argument("files", nargs="*", metavar="FILE", help="ingest: notice files (JSON or VOEvent XML)")
    p.add_argument("--config", required=True, type=Path, help="the merged configuration (patched/config.yaml)")
    p.add_argument("--token-file", type=Path, help="the API token file (default var/tokens/gcn.token)")
    p.add_argument("--url", help="the portal's address (default from server.host and server.port)")
    p.add_argument("--json", action="store_true", help="status: print the status as JSON")
    return p.parse_args(argv)


def make_portal(s: configmod.Settings, args: argparse.Namespace, stop: threading.Event) -> Portal:
    token_file = args.token_file or s.var_dir / "tokens" / "gcn.token"
    return Portal(args.url or s.portal_url, token_file, timeout=s.http_timeout, max_attempts=s.max_attempts,
                  backoff=s.backoff_seconds, backoff_max=s.backoff_max_seconds, stop=stop)


def cmd_run(s: configmod.Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    install_stop_signals(stop, log, "the notice in hand")
    status = Status(s.state_dir)
    dead = DeadLetters(s.state_dir)
    try:
        configmod.check_kafka(s)
    except configmod.ConfigError as exc:
        # Off until configured, without a crash loop under supervisord: say what is missing and wait for a
        # restart with a new configuration.
        log.info("not configured, idle: %s", exc)
        status.error(str(exc), state="not configured")
        stop.wait()
        status.update(state="stopped")
        return 0
    from .kafka_source import KafkaSource

    portal = make_portal(s, args, stop)
    status.update(state="starting", dead_letters=dead.count(), source={
        "servers": s.kafka.servers, "topics": s.kafka.topics, "group_id": s.kafka.group_id})
    source = KafkaSource(s.kafka, on_error=lambda message: status.error(message))
    delivery = Delivery(portal, s, status, dead, stop)
    log.info("gcn service: topics %s from %s (group %s) into %s; test events %s, %s",
             ", ".join(s.kafka.topics), s.kafka.servers, s.kafka.group_id, portal.url,
             "skipped" if s.skip_test_events else "kept",
             "significant events only" if s.significant_only else "all significances")
    last_lag = 0.0
    try:
        while not stop.is_set():
            m = source.next(1.0)
            if m is None:
                # Idle: measure the lag once after what was committed, and every LAG_EVERY seconds.
                if source.dirty or time.monotonic() - last_lag > LAG_EVERY:
                    source.measure_lag()
                    last_lag = time.monotonic()
                    status.update(state="running" if source.consumer.assignment() else "waiting for Kafka",
                                  position=source.position())
                continue
            delivery.handle(m.where, m.value, m.key)
            try:
                source.commit(m)
            except Exception as exc:  # noqa: BLE001 - KafkaException and friends: the message comes again
                log.warning("could not commit %s (it will be delivered again, harmlessly): %s", m.where, exc)
                status.error(f"commit of {m.where} failed: {exc}")
            status.update(position=source.position())
    except Stopping:
        log.info("stopped while waiting for the portal; the notice in hand was not committed and comes again")
    finally:
        source.close()
        status.update(state="stopped")
    return 0


def cmd_ingest(s: configmod.Settings, args: argparse.Namespace) -> int:
    if not args.files:
        print("ingest: give notice files (igwn.gwalert JSON or VOEvent XML)", file=sys.stderr)
        return 2
    stop = threading.Event()
    portal = make_portal(s, args, stop)
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            notice = read_notice(path.read_bytes())
        except OSError as exc:
            print(f"{path}: cannot read it: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        except NoticeError as exc:
            print(f"{path}: not a notice the portal takes: {exc}", file=sys.stderr)
            failed += 1
            continue
        test = is_test(notice)
        note = f" ({test}: the service would skip it)" if test else ""
        print(f"{path}: {notice.describe()} as {notice.content_type}{note}")
        try:
            answer = portal.post_notice(notice.body, notice.content_type)
        except PortalError as exc:
            hint = "" if exc.status else " (is the portal running? ./run.sh run starts it)"
            print(f"  refused: {exc}{hint}", file=sys.stderr)
            failed += 1
            continue
        print(f"  posted to {portal.url}/api/gcn_event: event {answer.get('gcnevent_id')} "
              f"(dateobs {answer.get('dateobs')}): {describe_answer(answer)}")
    print(f"{len(args.files) - failed} of {len(args.files)} notice(s) posted")
    return 1 if failed else 0


def describe_answer(answer: dict) -> str:
    """What the portal made of a notice, in words: new or known event, localizations added, tags."""
    if answer.get("duplicate"):
        return "already stored, nothing changed"
    parts = ["a new event" if answer.get("created") else "an update of a known event"]
    locs = answer.get("localization_ids") or []
    if locs:
        parts.append(f"{len(locs)} localization(s) added (id {', '.join(map(str, locs))})")
    if answer.get("tags"):
        parts.append(f"tags {', '.join(map(str, answer['tags']))}")
    return "; ".join(parts)


def cmd_status(s: configmod.Settings, args: argparse.Namespace) -> int:
    st = read_status(s.state_dir)
    dead = DeadLetters(s.state_dir)
    if args.json:
        print(json.dumps({"status": st, "dead_letters": dead.count()}, indent=1, default=str))
        return 0 if st else 3
    k = s.kafka
    print(f"source:        Kafka {k.servers or '(services.gcn.kafka.servers not set)'} topics {', '.join(k.topics)} "
          f"group {k.group_id}")
    print(f"filters:       test events {'skipped' if s.skip_test_events else 'kept'}; "
          f"{'significant events only' if s.significant_only else 'every significance'}")
    if not st:
        print("state:         never started (no var/gcn/status.json yet)")
        print(f"dead letters:  {dead.count()}")
        return 3
    alive = st.get("pid") and pid_alive(int(st["pid"])) and st.get("state") != "stopped"
    print(f"state:         {st.get('state')}{'' if alive else ' (not running)'}  (pid {st.get('pid')}, "
          f"updated {st.get('updated_at')})")
    pos = st.get("position") or {}
    offsets = pos.get("committed_offsets") or {}
    for key in sorted(set(offsets) | set(pos.get("lag") or {})):
        print(f"  {key:<50} offset {offsets.get(key, '-'):<8} lag {(pos.get('lag') or {}).get(key, '?')}")
    if pos:
        print(f"lag:           {pos.get('lag_total') if pos.get('lag_total') is not None else 'n/a'}")
    c = st.get("counts") or {}
    print(f"notices:       {c.get('received', 0)} received, {c.get('posted', 0)} posted, "
          f"{c.get('skipped', 0)} skipped, {c.get('dead', 0)} dead-lettered since start")
    last = st.get("last_notice")
    if last:
        what = f"{last.get('kind') or '?'} {last.get('notice_type') or ''} {last.get('event_id') or ''}".strip()
        detail = (f"event {last.get('gcnevent_id')} (dateobs {last.get('dateobs')}) in {last.get('seconds')} s"
                  if last["result"] == "posted"
                  else last.get("reason") or "")
        print(f"last notice:   {last['at']}: {last['where']} {what}: {last['result']} {detail}".rstrip())
    else:
        print("last notice:   none yet")
    err = st.get("last_error")
    print(f"last error:    {err['at'] + ': ' + err['message'] if err else 'none'}")
    n = dead.count()
    print(f"dead letters:  {n}" + (f" ({dead.path})" if n else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_line(sys.argv[1:] if argv is None else argv, parse_args, configmod.load,
                        {"run": cmd_run, "ingest": cmd_ingest, "status": cmd_status})


if __name__ == "__main__":
    sys.exit(main())
