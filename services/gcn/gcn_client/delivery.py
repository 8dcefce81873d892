"""One GCN message into the portal: read it, skip it (test events, optionally non-significant ones) with a log
line, or post it; a notice the portal refuses, or that keeps failing while the portal answers, goes to the dead
letters with its reason. While the portal is down or refuses the token the same notice waits (never dropped).
Returns only once the message may be committed."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .config import Settings
from .notices import Notice, NoticeError, read_notice, skip_reason
from .portal import AuthFailed, Portal, Rejected, Stopping, Unavailable
from .state import DeadLetters, Status, now

log = logging.getLogger("gcn")


@dataclass
class Outcome:
    what: str                       # "posted", "skipped" or "dead"
    notice: Notice | None = None
    reason: str | None = None       # why it was skipped or dead-lettered
    answer: dict | None = None      # the portal's answer to a posted notice


class Delivery:
    def __init__(self, portal: Portal, settings: Settings, status: Status, dead: DeadLetters,
                 stop: threading.Event) -> None:
        self.portal, self.settings, self.status, self.dead, self.stop = portal, settings, status, dead, stop

    def handle(self, where: str, value: bytes | None, key: bytes | None = None) -> Outcome:
        """Deliver one message; raises Stopping when SIGTERM comes while waiting for the portal."""
        self.status.count("received")
        started = time.monotonic()
        try:
            notice = read_notice(value)
        except NoticeError as exc:
            return self._dead(where, str(exc), value, key, None)
        why = skip_reason(notice, skip_test_events=self.settings.skip_test_events,
                          significant_only=self.settings.significant_only)
        if why:
            return self._skip(where, notice, why)
        attempt = 0
        while True:
            try:
                answer = self.portal.post_notice(notice.body, notice.content_type)
                break
            except Rejected as exc:
                if exc.status == 404 and (notice.notice_type or "").upper() == "RETRACTION":
                    # Its event never reached the portal (skipped as not significant, or from before the service
                    # followed the stream): nothing to retract, nothing to keep.
                    return self._skip(where, notice, f"a retraction of an event the portal does not have ({exc})")
                return self._dead(where, str(exc), value, key, notice)
            except Unavailable as exc:
                # A notice that breaks the portal (500 while /api/sysinfo answers) must not hold up the stream;
                # a portal that is down, overloaded or behind a proxy that cannot reach it (429, 502-504) is
                # waited for.
                if exc.status == 500 and self.portal.healthy():
                    return self._dead(where, f"keeps failing while the portal is up: {exc}", value, key, notice)
                state = "portal unavailable"
                log.warning("%s: %s; %s will be sent again", state, exc, where)
                self.status.error(str(exc), state=state)
            except AuthFailed as exc:
                state = "token refused"
                log.warning("%s: %s; %s will be sent again", state, exc, where)
                self.status.error(str(exc), state=state)
            attempt += 1
            if self.stop.wait(self.portal.delay(min(attempt, 6))):
                raise Stopping()
        seconds = time.monotonic() - started
        known = " (already stored: nothing changed)" if answer.get("duplicate") else ""
        log.info("posted %s (%s): event %s %s in %.2f s%s", where, notice.describe(), answer.get("gcnevent_id"),
                 answer.get("dateobs"), seconds, known)
        self.status.count("posted")
        self._last(where, notice, "posted", None, answer, seconds)
        return Outcome("posted", notice, None, answer)

    def _skip(self, where: str, notice: Notice, why: str) -> Outcome:
        log.info("skipped %s (%s): %s", where, notice.describe(), why)
        self.status.count("skipped")
        self._last(where, notice, "skipped", why)
        return Outcome("skipped", notice, why)

    def _dead(self, where: str, reason: str, value: bytes | None, key: bytes | None,
              notice: Notice | None) -> Outcome:
        self.dead.add(where=where, reason=reason, value=value, key=key, event_id=notice.event_id if notice else None)
        log.error("dead letter: %s (%s): %s", where, notice.describe() if notice else "not a notice", reason)
        self.status.count("dead")
        self._last(where, notice, "dead-lettered", reason)
        return Outcome("dead", notice, reason)

    def _last(self, where: str, notice: Notice | None, result: str, reason: str | None,
              answer: dict | None = None, seconds: float | None = None) -> None:
        self.status.update(state="running", last_notice={
            "at": now(), "where": where, "result": result, "reason": reason,
            "seconds": round(seconds, 3) if seconds is not None else None,
            "kind": notice.kind if notice else None, "event_id": notice.event_id if notice else None,
            "notice_type": notice.notice_type if notice else None,
            "gcnevent_id": (answer or {}).get("gcnevent_id"), "dateobs": (answer or {}).get("dateobs")},
            dead_letters=self.dead.count())
