"""A small extension used by tests/test_extension_points.py, through the catalogued points only.

A portal process started by those tests imports it (PYTHONPATH includes upstream/tests): it is named in
`app.handler_modules` (ROUTES, OPENAPI_SCHEMAS, a page with its own CSP, a page taking over /instruments),
`app.cli_modules` (COMMANDS) and `app.event_subscribers` (record_event, failing_subscriber).
"""

from __future__ import annotations

import json
import os

from astroportal.extension_points import Command, Event
from astroportal.handlers.base import APIHandler, permissions
from astroportal.handlers.pages.common import PageHandler, login_required

EVENTS_FILE_VARIABLE = "ASTROPORTAL_TEST_EVENTS_FILE"
SAMPLE_CSP = "default-src 'self'; img-src 'self' https://sky.example.org"


class HelloPage(PageHandler):
    content_security_policy = SAMPLE_CSP

    @login_required
    def get(self) -> None:
        """A page of the extension."""
        self.render_page("sample_hello.html")


class TakenOverInstruments(PageHandler):
    def get(self) -> None:
        """Served instead of the portal's /instruments: the extension's routes come first."""
        self.finish("sample instruments page")


class SampleAclCheck(APIHandler):
    @permissions(["Sample ACL"])
    def get(self) -> None:
        """
        Answers only to holders of the extension's own ACL.
        ---
        summary: Check the sample ACL
        tags: [sample]
        responses:
          200:
            content:
              application/json:
                schema: {$ref: '#/components/schemas/SampleThing'}
        """
        self.success({"held": True})


ROUTES = [
    (r"/sample/hello", HelloPage),
    (r"/instruments/?", TakenOverInstruments),
    (r"/api/sample/acl_check", SampleAclCheck),
]

OPENAPI_SCHEMAS = {"SampleThing": {"type": "object", "properties": {"held": {"type": "boolean"}}}}


# -- commands ------------------------------------------------------------------------------------------------
def _echo_arguments(parser) -> None:
    parser.add_argument("--word", required=True, help="what to print")


def _echo(args, cfg) -> int:
    print(f"{args.word} from {cfg.get('app.title')}")
    return 3 if args.word == "fail" else 0


COMMANDS = [Command(name="sample_echo", help="print --word and the portal's title", run=_echo,
                    add_arguments=_echo_arguments)]


# -- event subscribers -----------------------------------------------------------------------------------------
def record_event(event: Event) -> None:
    """Append the event as one JSON line to the file named by $ASTROPORTAL_TEST_EVENTS_FILE."""
    with open(os.environ[EVENTS_FILE_VARIABLE], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event.as_dict()) + "\n")


def failing_subscriber(event: Event) -> None:
    raise RuntimeError(f"sample subscriber fails on {event.kind}")
