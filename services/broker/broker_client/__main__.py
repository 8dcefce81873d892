"""`python -m broker_client [run|replay PATH...|status] --config FILE --token-file FILE`: the broker client.

run     the daemon (supervised): the configured source (services.broker.source: kafka or rest) into the portal
replay  Avro files or folders through the same pipeline, with progress and a summary; exit 1 if any alert
        went to the dead letters
status  the source, cursor or offsets, lag, last batch, rate, last error and dead-letter count
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from service_common.process import alive as pid_alive
from service_common.process import command_line, install_stop_signals

from . import config as configmod
from . import status as statusmod
from .cursor import Cursor
from .deadletter import DeadLetters
from .pipeline import BatchResult, Pipeline, describe
from .portal_client import AuthFailed, PortalClient, PortalError, Stopping, Unavailable
from .setup import SetupMissing, prepare

log = logging.getLogger("broker")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m broker_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=["run", "replay", "status"])
    p.add_argument("paths", nargs="*", metavar="PATH", help="replay: Avro files or folders of them")
    p.add_argument("--config", required=True, type=Path, help="the merged configuration (patched/config.yaml)")
    p.add_argument("--token-file", type=Path, help="the service's API token file (default var/tokens/broker.token)")
    p.add_argument("--url", help="the portal's address (default from server.host and server.port)")
    p.add_argument("--from-start", action="store_true", help="replay: send every record again, ignoring the cursor")
    p.add_argument("--json", action="store_true", help="status: print the status as JSON")
    return p.parse_args(argv)


def make_portal(s: configmod.Settings, args: argparse.Namespace, stop: threading.Event) -> PortalClient:
    token_file = args.token_file or s.var_dir / "tokens" / "broker.token"
    return PortalClient(args.url or s.portal_url, token_file, timeout=s.http_timeout, max_attempts=s.max_attempts,
                        backoff=s.backoff_seconds, backoff_max=s.backoff_max_seconds, stop=stop)


def wait_for_setup(portal: PortalClient, s: configmod.Settings, status: statusmod.Status, stop: threading.Event,
                   *, give_up_after: float | None = None):
    """The portal-side ids the mapping needs, waiting (with backoff) until the portal and its setup are ready."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            ctx = prepare(portal, s)
            status.update(state="running", setup={"group_ids": ctx.group_ids, "instrument_id": ctx.instrument_id,
                                                  "filter_id": ctx.filter_id, "taxonomy_id": ctx.taxonomy_id})
            return ctx
        except (SetupMissing, PortalError) as exc:
            message = f"waiting for the portal: {exc}"
            log.warning("%s", message)
            status.error(str(exc), state="waiting for the portal")
            if give_up_after is not None and time.monotonic() - started > give_up_after:
                raise
        attempt += 1
        if stop.wait(portal.delay(min(attempt, 6))):
            raise Stopping()


def send_until_done(pipeline: Pipeline, items, status: statusmod.Status, stop: threading.Event,
                    give_up_after: float | None = None) -> BatchResult:
    """Send one batch, waiting out an unavailable portal or a token problem (never dropping the batch)."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return pipeline.send(items)
        except (Unavailable, AuthFailed) as exc:
            state = "portal unavailable" if isinstance(exc, Unavailable) else "token refused"
            log.warning("%s: %s; the batch will be sent again", state, exc)
            status.error(str(exc), state=state)
            if give_up_after is not None and time.monotonic() - started > give_up_after:
                raise
        attempt += 1
        if stop.wait(pipeline.portal.delay(min(attempt, 6))):
            raise Stopping()


def prefetched(source, pipeline: Pipeline, stop: threading.Event):
    """(batch, prepared) pairs: the next batch is read, mapped and encoded in a thread while the portal writes
    the current one (the service's work and the portal's overlap)."""
    q: queue.Queue = queue.Queue(maxsize=1)
    done = object()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # One batch read ahead, no more: the next is read only once the last was taken (with batches in flight, the
    # queue's slot and a batch waiting to enter it would each hold another batch's cutouts in memory).
    slot = threading.Semaphore(1)

    def work() -> None:
        try:
            batches = iter(source.batches())
            while True:
                while not slot.acquire(timeout=0.2):
                    if stop.is_set():
                        return
                batch = next(batches, END)
                if batch is END:
                    break
                if batch is None:  # an idle wait: nothing to prepare
                    slot.release()
                    continue
                if not put((batch, pipeline.prepare(batch.items))) or stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            put(exc)
            return
        put(done)

    thread = threading.Thread(target=work, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            try:
                got = q.get(timeout=0.5)
            except queue.Empty:
                if not thread.is_alive():
                    return
                yield None  # the caller commits what was confirmed meanwhile
                continue
            if got is done:
                return
            if isinstance(got, BaseException):
                raise got
            slot.release()
            yield got
    finally:
        stop.set()
        thread.join(30)


def in_turn(source, pipeline: Pipeline):
    """(batch, prepared) pairs read in the calling thread (a Kafka consumer reads and commits in one thread)."""
    for batch in source.batches():
        yield None if batch is None else (batch, pipeline.prepare(batch.items))


END = object()  # the end of a source's batches (None is an idle wait)


def objects_of(prepared) -> set[str]:
    return {w.obj_id for _, w in prepared.pairs}


def run_pipeline(source, pipeline: Pipeline, status: statusmod.Status, dead: DeadLetters, stop: threading.Event,
                 progress=None, give_up_after: float | None = None, prefetch: bool = True,
                 in_flight: int = 2) -> dict:
    """Every batch of `source` into the portal, committing each once confirmed; returns the totals.

    Up to `in_flight` batches are written at once (the portal's process and its database each keep a core busy
    only when the next batch's writes arrive while the last one's are in the database), but they are committed
    in their order, each only once it and every batch before it were confirmed, so the cursor never passes an
    alert the portal does not hold. A batch that names an object of a batch still in flight waits for it: the
    newer alert's cutouts and scores must be written last.
    """
    totals = {"alerts": 0, "dead": 0, "points": 0, "new_sources": 0}
    started = time.monotonic()
    # The reading thread stops with `stop` (SIGTERM) or at the end; its own event keeps SIGTERM's meaning here.
    reader_stop = threading.Event()
    watcher = threading.Thread(target=lambda: (stop.wait(), reader_stop.set()), daemon=True)
    watcher.start()
    batches = prefetched(source, pipeline, reader_stop) if prefetch else in_turn(source, pipeline)
    senders = ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="batch")
    flying: deque = deque()  # (batch, its objects, future, start time), oldest first

    def finish_oldest() -> None:
        batch, _, future, t0 = flying.popleft()
        result = future.result()
        batch.commit()  # in the calling thread: a Kafka consumer commits in the thread that reads
        seconds = time.monotonic() - t0
        for k in totals:
            totals[k] += getattr(result, k)
        position = source.position()
        lag = position.get("lag_total")
        log.info("%s", describe(result, seconds, lag))
        status.update(
            state="running", position=position, lag=lag, dead_letters=dead.count(),
            alerts_total=status.data.get("alerts_total", 0) + result.alerts,
            points_total=status.data.get("points_total", 0) + result.points,
            last_batch={"at": statusmod.now(), "alerts": result.alerts, "points": result.points,
                        "new_sources": result.new_sources, "dead": result.dead, "seconds": round(seconds, 3)},
            rate=round(len(batch.items) / seconds, 1) if seconds > 0 else None,
        )
        if progress:
            progress(totals, time.monotonic() - started)

    try:
        batches = iter(batches)
        while True:
            while flying and (len(flying) >= max(1, in_flight) or flying[0][2].done()):
                finish_oldest()  # room first (a batch taken early only waits in memory), and commit what is done
            taken = next(batches, END)
            if taken is END:
                break
            if taken is None:  # the source waited and found nothing
                continue
            batch, prepared = taken
            objects = objects_of(prepared)
            while flying and any(objects & f[1] for f in flying):
                finish_oldest()
            flying.append((batch, objects, senders.submit(send_until_done, pipeline, prepared, status, stop,
                                                          give_up_after), time.monotonic()))
            if stop.is_set():
                break
        while flying:
            finish_oldest()
        if stop.is_set():
            log.info("stopping after the batches in hand (committed)")
    finally:
        # On an error, the batches still in flight end (or fail) before the error goes up; they are not
        # committed, so the next start sends them again (the portal's writes are idempotent).
        senders.shutdown(wait=True)
    totals["seconds"] = time.monotonic() - started
    return totals


def cmd_run(s: configmod.Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    install_stop_signals(stop, log, "the batch in hand")
    status = statusmod.Status(s.state_dir, s.source)
    try:
        configmod.check_source(s)
    except configmod.ConfigError as exc:
        # No crash loop under supervisord: say what is missing, then wait for a restart with a new configuration.
        log.error("%s", exc)
        status.error(str(exc), state="not configured")
        stop.wait()
        return 0
    dead = DeadLetters(s.state_dir)
    portal = make_portal(s, args, stop)
    status.update(state="starting", dead_letters=dead.count())
    source = None
    try:
        ctx = wait_for_setup(portal, s, status, stop)
        on_error = lambda message: status.error(message)  # noqa: E731
        if s.source == "kafka":
            from .sources.kafka import KafkaSource

            source = KafkaSource(s.kafka, s.batch_size, s.batch_seconds, stop=stop, on_error=on_error)
        else:
            from .sources.rest import RestSource

            source = RestSource(s.rest, Cursor(s.state_dir, "rest"), s.batch_size, timeout=s.http_timeout,
                                startdate=s.rest.startdate, stop=stop, on_error=on_error)
        log.info("broker client: %s source into %s as groups %s", s.source, portal.url, s.group_names)
        run_pipeline(source, Pipeline(portal, ctx, dead, s.source), status, dead, stop,
                     prefetch=s.source != "kafka", in_flight=s.batches_in_flight)
    except Stopping:
        log.info("stopped while waiting; nothing unconfirmed was committed")
    finally:
        if source is not None:
            source.close()
        status.update(state="stopped")
    return 0


def cmd_replay(s: configmod.Settings, args: argparse.Namespace) -> int:
    from .sources.files import FileSource

    if not args.paths:
        print("replay: give Avro files or folders of them", file=sys.stderr)
        return 2
    stop = threading.Event()
    install_stop_signals(stop, log, "the batch in hand")
    s.group_names = s.group_names or []
    if not s.group_names:
        print("error: services.broker.group_names is empty: name the portal group(s) alerts are saved to",
              file=sys.stderr)
        return 2
    try:
        source = FileSource([Path(p) for p in args.paths], Cursor(s.state_dir, "files"), s.batch_size,
                            from_start=args.from_start, stop=stop)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    dead = DeadLetters(s.state_dir)
    dead_before = dead.count()
    portal = make_portal(s, args, stop)
    status = statusmod.Status(s.state_dir / "replay", "files")
    print(f"replaying {len(source.files)} file(s) into {portal.url}", file=sys.stderr)

    def progress(totals: dict, seconds: float) -> None:
        print(f"  {totals['alerts'] + totals['dead']} alerts, {totals['points']} points, "
              f"{totals['dead']} dead-lettered, {seconds:.1f} s", file=sys.stderr)

    try:
        ctx = wait_for_setup(portal, s, status, stop, give_up_after=s.backoff_max_seconds)
        totals = run_pipeline(source, Pipeline(portal, ctx, dead, "files"), status, dead, stop, progress,
                              give_up_after=s.backoff_max_seconds, in_flight=s.batches_in_flight)
    except (SetupMissing, PortalError) as exc:
        print(f"error: {exc}\n(is the portal running? ./run.sh run starts it)", file=sys.stderr)
        return 3
    except Stopping:
        print("interrupted: what was confirmed is kept; run the same replay to resume", file=sys.stderr)
        return 130
    print(f"replayed {totals['alerts']} alerts ({totals['new_sources']} new sources, {totals['points']} points) "
          f"in {totals['seconds']:.1f} s; {totals['dead']} dead-lettered; {source.skipped} skipped "
          f"(already sent: --from-start sends them again)")
    log.info("time per call: %s", ", ".join(f"{k} {v:.1f} s" for k, v in sorted(portal.timings.items())))
    if totals["dead"]:
        print(f"{totals['dead']} alert(s) went to the dead letters: {dead.path} (lines {dead_before + 1}..)",
              file=sys.stderr)
        return 1
    return 0


def cmd_status(s: configmod.Settings, args: argparse.Namespace) -> int:
    st = statusmod.read(s.state_dir)
    dead = DeadLetters(s.state_dir).count()
    if args.json:
        print(json.dumps({"status": st, "dead_letters": dead}, indent=1, default=str))
        return 0 if st else 3
    print(f"source:        {s.source}")
    if not st:
        print("state:         never started (no var/broker/status.json yet)")
        print(f"dead letters:  {dead}")
        return 3
    alive = st.get("pid") and pid_alive(int(st["pid"])) and st.get("state") != "stopped"
    print(f"state:         {st.get('state')}{'' if alive else ' (not running)'}  (pid {st.get('pid')}, "
          f"updated {st.get('updated_at')})")
    pos = st.get("position") or {}
    if "committed_offsets" in pos:
        print(f"kafka:         {pos.get('servers')} topics {', '.join(pos.get('topics') or [])} "
              f"group {pos.get('group_id')}")
        for key, off in sorted(pos["committed_offsets"].items()):
            print(f"  {key:<40} offset {off:<10} lag {pos.get('lag', {}).get(key, '?')}")
    elif "windows" in pos:
        for cls, w in pos["windows"].items():
            print(f"rest window:   {cls}: from {w.get('last_date') or 'the start date'}")
    elif pos:
        print(f"cursor:        {pos}")
    print(f"lag:           {st.get('lag') if st.get('lag') is not None else 'n/a'}")
    lb = st.get("last_batch")
    if lb:
        print(f"last batch:    {lb['at']}: {lb['alerts']} alerts, {lb['points']} points, {lb['seconds']} s"
              f"{', %d dead-lettered' % lb['dead'] if lb.get('dead') else ''}")
    else:
        print("last batch:    none yet")
    print(f"rate:          {st.get('rate') or 'n/a'} alerts/s (last batch); "
          f"{st.get('alerts_total', 0)} alerts since start")
    err = st.get("last_error")
    print(f"last error:    {err['at'] + ': ' + err['message'] if err else 'none'}")
    print(f"dead letters:  {dead}" + (f" ({DeadLetters(s.state_dir).path})" if dead else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_line(sys.argv[1:] if argv is None else argv, parse_args, configmod.load,
                        {"run": cmd_run, "replay": cmd_replay, "status": cmd_status})


if __name__ == "__main__":
    sys.exit(main())
