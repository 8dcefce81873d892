"""Every extension point of the portal, in one place. Read this first.

A deployment (a "distribution") adds to the portal without editing it: it names its own modules, templates,
ACLs, commands and subscribers in configuration, and the portal calls them at fixed places. Each point below
says what it is called (its configuration key or hook name), what it receives, what it must return or provide,
and gives an example. `python -m astroportal extension_points` prints this catalogue as JSON.

The portal's code reads every point through this module (`HANDLER_MODULES.modules(cfg)`,
`EVENT_SUBSCRIBERS.callables(cfg)`, ...), never with `cfg.get("app....")` of its own: tests/test_extension_points.py
fails when code reads a point that is not declared here, and when a point is declared that nothing reads.
A new point is added here first, with a default in config.defaults.yaml.

Points, by what they extend:
  branding      TITLE, LOGO
  web           HANDLER_MODULES (+ ROUTE_PRECEDENCE, OPENAPI_SCHEMAS, PAGE_CSP), TEMPLATE_PATHS, STATIC_PATHS,
                BASE_TEMPLATE_BLOCKS, NAV_ENTRIES, PAGE_BLOCKS
  data          MODEL_MODULES, MIGRATION_LOCATIONS
  permissions   EXTRA_ACLS, ROLE_GRANTS
  login         AUTH_BACKENDS, AUTH_BACKEND_SETTINGS, DEFAULT_ROLE, AUTH_PIPELINE_EXTRA
  commands      CLI_MODULES, VOCABULARY_COMMAND
  events        EVENT_SUBSCRIBERS (with Event and EVENT_KINDS)
  deployment    SERVICE_FOLDERS
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import Config, ConfigError


class ExtensionPointError(ConfigError):
    """A configured extension point names something that is not there or has the wrong shape."""


@dataclass(frozen=True, kw_only=True)
class ExtensionPoint:
    """One place where a deployment extends the portal.

    `name` is the configuration key (dotted) or the hook's name; `kind` says how it is given: "config" (a key in
    the configuration), "module attribute", "class attribute", "template" (blocks of a template), "command"
    (a portal command a deployment's tools run), "function" (a function of the portal a deployment's code
    calls) or "folder" (a file layout a deployment's launcher reads).
    `read_by_launcher`: the portal itself does not read it; a deployment's launcher does.
    """

    name: str
    kind: str
    receives: str
    provides: str
    example: str
    read_by_launcher: bool = False

    def describe(self) -> dict:
        """The point as a JSON-ready mapping (what `python -m astroportal extension_points` prints)."""
        return {"name": self.name, "kind": self.kind, "receives": self.receives, "provides": self.provides,
                "example": self.example.strip("\n"), "read_by_launcher": self.read_by_launcher}


@dataclass(frozen=True, kw_only=True)
class ConfigPoint(ExtensionPoint):
    """A point given as a configuration key; `default` is what an unset key means."""

    kind: str = "config"
    default: Any = None

    def read(self, cfg: Config) -> Any:
        """The configured value as written (None and a missing key give the default)."""
        value = cfg.get(self.name)
        return self.default if value is None else value

    def names(self, cfg: Config) -> list[str]:
        """A list of dotted names (a single string counts as a list of one); an ExtensionPointError otherwise."""
        value = self.read(cfg) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ExtensionPointError(f"{self.name}: expected a list of dotted names, got {value!r}")
        return [v.strip() for v in value]

    def modules(self, cfg: Config) -> list:
        """The modules named in the list, imported in order."""
        out = []
        for name in self.names(cfg):
            try:
                out.append(importlib.import_module(name))
            except ImportError as exc:
                raise ExtensionPointError(f"{self.name}: cannot import module {name}: {exc}") from None
        return out

    def callables(self, cfg: Config) -> list[Callable]:
        """The functions named in the list (`package.module.function`), imported in order."""
        out = []
        for name in self.names(cfg):
            module_name, _, attr = name.rpartition(".")
            try:
                func = getattr(importlib.import_module(module_name), attr) if module_name else None
            except (ImportError, AttributeError) as exc:
                raise ExtensionPointError(f"{self.name}: cannot import {name}: {exc}") from None
            if not callable(func):
                raise ExtensionPointError(f"{self.name}: {name} is not a function (give package.module.function)")
            out.append(func)
        return out

    def paths(self, cfg: Config) -> list[Path]:
        """The listed directories, relative ones taken from the configuration file's directory."""
        base = cfg.path.parent if cfg.path else Path.cwd()
        return [p if p.is_absolute() else (base / p).resolve() for p in map(Path, self.names(cfg))]


# ==============================================================================================================
# Branding
# ==============================================================================================================
TITLE = ConfigPoint(
    name="app.title",
    receives="nothing",
    provides="the portal's name: page titles, the header, the login page, the OpenAPI document's title",
    example="app: {title: Example Observatory Portal}",
    default="Astro Portal",
)

LOGO = ConfigPoint(
    name="app.logo",
    receives="nothing",
    provides="URL of the logo in the header and of the page icon (usually a file added under app.static_paths "
             "or the overlay's static/ directory)",
    example="app: {logo: /static/images/my-logo.svg}",
    default="/static/images/logo.svg",
)

# ==============================================================================================================
# The web application
# ==============================================================================================================
HANDLER_MODULES = ConfigPoint(
    name="app.handler_modules",
    receives="nothing; each module is imported once when the app is built",
    provides="modules that export `ROUTES`: a list of Tornado routes `(regex, HandlerClass[, kwargs])`. API "
             "handlers subclass handlers.base.APIHandler, pages handlers.pages.common.PageHandler; keep them thin "
             "(parse, check permission with @permissions([...]), call a plain function, answer)",
    example="""
app: {handler_modules: [mydist.handlers.kilonova]}
# mydist/handlers/kilonova.py
class ScoreHandler(APIHandler):
    @permissions(["Upload data"])
    def get(self, obj_id): self.success({"score": score_of(self.session, obj_id)})
ROUTES = [(r"/api/kilonova/([^/]+)", ScoreHandler)]
""",
    default=[],
)


@dataclass(frozen=True, kw_only=True)
class RoutePrecedence(ExtensionPoint):
    """The order in which route lists are mounted (Tornado serves the first route that matches)."""

    def ordered(self, extra: Iterable, core: Iterable) -> list:
        """Routes of configured modules first, then the portal's own (and its catch-all API 404 last)."""
        return list(extra) + list(core)


ROUTE_PRECEDENCE = RoutePrecedence(
    name="route precedence",
    kind="guarantee",
    receives="the ROUTES of app.handler_modules and of the portal's own handler modules",
    provides="the configured modules' routes are mounted first, so a distribution's route for a URL the portal "
             "also serves takes it over (no upstream file is edited); unknown /api/ URLs answer a JSON 404",
    example="ROUTES = [(r\"/candidates/?\", MyCandidatesPage)]   # replaces the portal's candidates page",
)


@dataclass(frozen=True, kw_only=True)
class ModuleAttribute(ExtensionPoint):
    """A module-level name the portal looks for in the modules a deployment names."""

    kind: str = "module attribute"

    def read(self, module: Any, default: Any = None) -> Any:
        return getattr(module, self.name, default)


ROUTES_OF_MODULE = ModuleAttribute(
    name="ROUTES",
    receives="nothing",
    provides="in a module of app.handler_modules: the list of Tornado routes it serves (a module without "
             "ROUTES serves nothing; the portal's own handler modules follow the same convention)",
    example="ROUTES = [(r\"/api/kilonova/([^/]+)\", ScoreHandler)]",
)

OPENAPI_SCHEMAS = ModuleAttribute(
    name="OPENAPI_SCHEMAS",
    receives="nothing",
    provides="in a module of app.handler_modules: {schema name: OpenAPI schema}, added to the document's "
             "components/schemas so that handler docstrings may `$ref: '#/components/schemas/NAME'` them "
             "(a name the portal already defines keeps the portal's schema)",
    example="OPENAPI_SCHEMAS = {\"KilonovaScore\": {\"type\": \"object\", \"properties\": {\"score\": {\"type\": \"number\"}}}}",
)


@dataclass(frozen=True, kw_only=True)
class ClassAttribute(ExtensionPoint):
    """An attribute a deployment's handler class may set."""

    kind: str = "class attribute"

    def read(self, obj: Any, default: Any = None) -> Any:
        return getattr(obj, self.name, default)


PAGE_CSP = ClassAttribute(
    name="content_security_policy",
    receives="nothing",
    provides="on a PageHandler subclass: the page's Content-Security-Policy header value (a string), or None to "
             "send none. The default allows scripts, styles and images from the portal only (no inline script)",
    example="class SkymapPage(PageHandler):\n    content_security_policy = DEFAULT_CSP.replace(\"img-src 'self'\", "
            "\"img-src 'self' https://alasky.cds.unistra.fr\")",
)

TEMPLATE_PATHS = ConfigPoint(
    name="app.template_paths",
    receives="nothing",
    provides="directories of Tornado templates searched before the portal's own (relative paths: from the "
             "configuration file's directory). Templates named in app.page_blocks live here; a template of the "
             "same name as the portal's replaces it (prefer blocks: a replacement goes stale when upstream changes)",
    example="app: {template_paths: [templates]}",
    default=[],
)

STATIC_PATHS = ConfigPoint(
    name="app.static_paths",
    receives="nothing",
    provides="directories served under /static/, searched before the portal's own",
    example="app: {static_paths: [static]}   # static/js/kilonova.js is /static/js/kilonova.js",
    default=[],
)


@dataclass(frozen=True, kw_only=True)
class TemplateBlocks(ExtensionPoint):
    """Named blocks of a template that a template extending it may fill."""

    template: str = "base.html"
    blocks: tuple[str, ...] = ()


BASE_TEMPLATE_BLOCKS = TemplateBlocks(
    name="base.html blocks",
    kind="template",
    receives="the template namespace: handler, current_user, request, static_url, app_title, app_logo, "
             "nav_entries, page_blocks(place, **context), page_data_json",
    provides="a page template of app.template_paths `{% extends \"base.html\" %}` and fills the blocks it needs",
    example='{% extends "base.html" %}{% block content %}<h1>Kilonovae</h1>{% end %}',
    template="base.html",
    blocks=("title", "head", "navbar_brand", "navbar_extra", "content", "footer", "scripts"),
)


@dataclass(frozen=True)
class NavEntry:
    """One link of the page header's navigation, shown to logged-in users (holding `acl`, when it is set)."""

    label: str
    url: str
    acl: str | None = None

    def visible_to(self, user: Any) -> bool:
        if user is None:
            return False
        return self.acl is None or self.acl in user.acl_names or "System admin" in user.acl_names


@dataclass(frozen=True, kw_only=True)
class NavEntries(ConfigPoint):
    def entries(self, cfg: Config) -> list[NavEntry]:
        """The configured links, checked: each needs a `label` and a `url` (a path or an http(s) URL)."""
        value = self.read(cfg)
        if not isinstance(value, list):
            raise ExtensionPointError(f"{self.name}: expected a list of {{label, url, acl}} mappings, got {value!r}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or set(item) - {"label", "url", "acl"}:
                raise ExtensionPointError(f"{self.name}[{i}]: expected a mapping with label, url and optionally acl; "
                                          f"got {item!r}")
            label, url, acl = item.get("label"), item.get("url"), item.get("acl")
            if not isinstance(label, str) or not label.strip():
                raise ExtensionPointError(f"{self.name}[{i}]: `label` must be a non-empty string")
            if not isinstance(url, str) or not url.startswith(("/", "http://", "https://")):
                raise ExtensionPointError(f"{self.name}[{i}]: `url` must be a path (/...) or an http(s) URL, got {url!r}")
            if acl is not None and (not isinstance(acl, str) or not acl.strip()):
                raise ExtensionPointError(f"{self.name}[{i}]: `acl` must be an ACL name")
            out.append(NavEntry(label.strip(), url, acl))
        return out


NAV_ENTRIES = NavEntries(
    name="app.nav_entries",
    receives="nothing",
    provides="links added to the page header's navigation after the portal's own: {label, url, acl}; `acl` "
             "(optional) shows the link only to users holding that ACL (System admin holds every one). The link "
             "is marked active on pages under its url",
    example="app: {nav_entries: [{label: Kilonovae, url: /kilonovae}, {label: Solve, url: /solve, acl: Solve images}]}",
    default=[],
)

# The places of app.page_blocks: where each is rendered, and the context its templates get (besides the
# template namespace of BASE_TEMPLATE_BLOCKS). Adding a place means adding it here and to a core template.
PAGE_BLOCK_PLACES: dict[str, str] = {
    "source.actions": "source.html, in the page header after the object's id and badges. Context: obj (the "
                      "models.Obj: id, ra, dec, redshift, alias, origin, created_at), pos (formatted positions: "
                      "ra_deg, dec_deg, ra_hms, dec_dms, l_deg, b_deg)",
    "source.panels": "source.html, after the portal's cards (each template is usually one <div class=\"card\">). "
                     "Context: obj, pos (as source.actions)",
    "dashboard.panels": "dashboard.html, after the portal's cards. Context: none beyond the namespace "
                        "(current_user is the viewer)",
    "candidates.actions": "candidates.html, after the options form. Context: state (the page's options: "
                          "pageNumber, numPerPage, includeRejected, savedStatus)",
    "candidates.columns": "candidates.html, inside <div id=\"candidate-columns\">. Context: state (as "
                          "candidates.actions). Each template renders one <template data-label=\"Column title\"> "
                          "holding one cell's markup: the browser adds a column after the portal's, with the "
                          "template's content in each row; in it, an element with data-field=\"NAME\" shows the "
                          "candidate's field NAME (id, ra, dec, passed_at, ...) as text, and every element with "
                          "data-obj-id gets the row's object id. Scripts may fill cells on the document event "
                          "`portal:candidates-rendered` (detail.candidates: the rows)",
}


@dataclass(frozen=True, kw_only=True)
class PageBlocks(ConfigPoint):
    def places(self, cfg: Config) -> dict[str, list[str]]:
        """{place: [template names]} checked against PAGE_BLOCK_PLACES."""
        value = self.read(cfg)
        if not isinstance(value, dict):
            raise ExtensionPointError(f"{self.name}: expected a mapping of place to template names, got {value!r}")
        out = {}
        for place, names in value.items():
            if place not in PAGE_BLOCK_PLACES:
                raise ExtensionPointError(
                    f"{self.name}: unknown place {place!r}; the places are {', '.join(sorted(PAGE_BLOCK_PLACES))}")
            names = [names] if isinstance(names, str) else (names or [])
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ExtensionPointError(f"{self.name}.{place}: expected a list of template names, got {names!r}")
            out[place] = list(names)
        return out


PAGE_BLOCKS = PageBlocks(
    name="app.page_blocks",
    receives="each template is rendered with the template namespace and its place's context (PAGE_BLOCK_PLACES)",
    provides="{place: [template names]}: templates (found through app.template_paths) rendered in order at named "
             "places of the portal's pages: source.actions, source.panels, dashboard.panels, candidates.actions, "
             "candidates.columns. A template that does not exist stops the app at start with its name",
    example="""
app:
  template_paths: [templates]
  page_blocks:
    source.panels: [kilonova_panel.html]
    candidates.columns: [kilonova_column.html]
# templates/kilonova_panel.html
<div class="card"><h2>Kilonova score</h2><div data-obj-id="{{ obj.id }}" class="kn-score"></div></div>
# templates/kilonova_column.html
<template data-label="KN score"><span class="kn-score" data-obj-id></span></template>
""",
    default={},
)

# ==============================================================================================================
# Data
# ==============================================================================================================
MODEL_MODULES = ConfigPoint(
    name="app.model_modules",
    receives="nothing; imported before serving and in Alembic's env.py",
    provides="modules defining SQLAlchemy models on models.base.Base, so their tables join the metadata "
             "(their tables are created by a migration of MIGRATION_LOCATIONS, never by the app)",
    example="app: {model_modules: [mydist.models]}",
    default=[],
)

MIGRATION_LOCATIONS = ConfigPoint(
    name="database.migration_locations",
    receives="nothing",
    provides="extra Alembic version directories (relative: from the configuration file's directory): a branch of "
             "the deployment's own, with its own branch label, whose root depends on the portal's revision 0001; "
             "`migrate` upgrades every head and `serve` refuses a database that lacks one of them",
    example="database: {migration_locations: [alembic/versions_distribution]}",
    default=[],
)

# ==============================================================================================================
# Permissions
# ==============================================================================================================
EXTRA_ACLS = ConfigPoint(
    name="app.extra_acls",
    receives="nothing",
    provides="names of the deployment's own ACLs, created in the database by bootstrap (at every `serve` and "
             "`bootstrap`) next to the portal's (permissions.ACLS); Super admin is given every one. Handlers "
             "check them with @permissions([\"NAME\"]); service tokens and roles may hold them",
    example="app: {extra_acls: [Solve images, Manage alerts]}",
    default=[],
)

ROLE_GRANTS = ConfigPoint(
    name="app.role_grants",
    receives="nothing",
    provides="{role: [ACL names]}: the roles that hold the deployment's ACLs (or more of the portal's). A role "
             "not yet known is created. Bootstrap writes the grants at every start, idempotently, and the "
             "configuration is the record: each role holds exactly the portal's grants (permissions.ROLES) plus "
             "the ones listed here, so a grant removed here is withdrawn at the next start",
    example="app: {role_grants: {Full user: [Solve images], Group admin: [Solve images, Manage alerts]}}",
    default={},
)

# ==============================================================================================================
# Login
# ==============================================================================================================
AUTH_BACKENDS = ConfigPoint(
    name="server.auth.backends",
    receives="social-core's usual backend calls; settings from AUTH_BACKEND_SETTINGS",
    provides="dotted paths of social-core backend classes, one login button each (in this order); the class's "
             "`name` is its URL (/login/NAME, /complete/NAME) and its settings section",
    example="server: {auth: {backends: [mydist.auth.iam.IAMOpenIdConnect]}}",
    default=[],
)


@dataclass(frozen=True, kw_only=True)
class BackendSettings(ExtensionPoint):
    def section(self, cfg: Config, backend_name: str) -> dict:
        """`server.auth.<backend name>` (read directly: a backend's name is not split on dots)."""
        section = (cfg.get("server.auth") or {}).get(backend_name)
        return section if isinstance(section, dict) else {}


AUTH_BACKEND_SETTINGS = BackendSettings(
    name="server.auth.<backend name>",
    kind="config",
    receives="nothing",
    provides="a backend's settings: `key`, `secret`, `scope` and any social-core setting in lower case "
             "(`oidc_endpoint` is SOCIAL_AUTH_<NAME>_OIDC_ENDPOINT, read by the backend with "
             "self.setting(\"OIDC_ENDPOINT\")), plus `display_name` and `logo` for the login page's button",
    example="server: {auth: {iam: {display_name: Our IAM, logo: /static/images/iam.svg, key: portal, "
            "oidc_endpoint: https://iam.example.org/}}}",
)

DEFAULT_ROLE = ConfigPoint(
    name="server.auth.default_role",
    receives="nothing",
    provides="the role given to a user created at first login (a role name; null: none)",
    example="server: {auth: {default_role: View only}}",
)

AUTH_PIPELINE_EXTRA = ConfigPoint(
    name="server.auth.pipeline_extra",
    receives="social-core's pipeline keyword arguments: strategy (strategy.session: the login's SQLAlchemy "
             "session, committed when the login succeeds; strategy.cfg), backend, response (the provider's "
             "claims), details, uid, user (models.User), is_new, social",
    provides="dotted functions run after social-core's default login steps; each returns None or a dict of values "
             "for the later steps, and may raise auth.pipeline.LoginRefused(backend, message) to refuse the login",
    example="server: {auth: {pipeline_extra: [mydist.auth.group_mapping.sync_mapped_groups]}}",
    default=[],
)

# ==============================================================================================================
# Commands
# ==============================================================================================================


@dataclass(frozen=True)
class Command:
    """A portal command contributed by a module of app.cli_modules: `python -m astroportal NAME --config FILE`.

    `add_arguments(parser)` adds the command's own arguments to its argparse parser (`--config` is already
    there); `run(args, cfg)` does the work with the loaded configuration and returns the exit status.
    """

    name: str
    help: str
    run: Callable[[Any, Config], int]
    add_arguments: Callable[[Any], None] | None = None


@dataclass(frozen=True, kw_only=True)
class CliModules(ConfigPoint):
    def commands(self, cfg: Config) -> list[Command]:
        """Every Command listed in the `COMMANDS` of the configured modules."""
        out = []
        for module in self.modules(cfg):
            found = getattr(module, "COMMANDS", None)
            if not isinstance(found, (list, tuple)) or not all(isinstance(c, Command) for c in found):
                raise ExtensionPointError(f"{self.name}: module {module.__name__} must define COMMANDS, a list of "
                                          "astroportal.extension_points.Command")
            out.extend(found)
        return out


CLI_MODULES = CliModules(
    name="app.cli_modules",
    receives="for each command: add_arguments(parser) receives its argparse parser; run(args, cfg) the parsed "
             "arguments and the loaded configuration",
    provides="modules whose `COMMANDS` lists extension_points.Command(name, help, run, add_arguments); each becomes "
             "`python -m astroportal NAME` (listed by --help). A name the portal already uses is refused",
    example="""
app: {cli_modules: [mydist.commands]}
# mydist/commands.py
def add_arguments(parser): parser.add_argument("--days", type=int, default=7)
def run(args, cfg): print(purge_old_alerts(cfg, args.days)); return 0
COMMANDS = [Command(name="purge_alerts", help="delete alerts older than --days", run=run, add_arguments=add_arguments)]
""",
    default=[],
)

VOCABULARY_COMMAND = ExtensionPoint(
    name="vocabulary",
    kind="command",
    receives="--config FILE",
    provides="`python -m astroportal vocabulary` prints JSON {filters, instrument_types, roles}: the names the API "
             "accepts (roles include those of app.role_grants), for a deployment's tools that check data files "
             "before sending them",
    example='python -m astroportal vocabulary --config patched/config.yaml | jq .filters',
)

# ==============================================================================================================
# Events
# ==============================================================================================================


@dataclass(frozen=True)
class Event:
    """Something a committed write did. `ids` are the rows it is about (see EVENT_KINDS), `obj_ids` the
    objects, `group_ids` the groups that may see it, `user_id` who wrote it."""

    kind: str
    obj_ids: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    user_id: int | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "obj_ids": list(self.obj_ids), "ids": list(self.ids),
                "group_ids": list(self.group_ids), "user_id": self.user_id}


EVENT_KINDS: dict[str, str] = {
    "source.saved": "an object was saved to groups it was not active in: obj_ids (one), group_ids (the groups "
                    "newly saved to), ids empty",
    "photometry.added": "photometry was written (POST: new points; PUT: every point of the batch, new, changed or "
                        "sent again unchanged): ids (the points, in input order), obj_ids, group_ids (the groups "
                        "the batch was shared with)",
    "candidate.passed": "an object passed filters for the first time at this time: ids (the new candidates), "
                        "obj_ids (one), group_ids (the filters' groups)",
    "classification.added": "a classification was posted: ids (one), obj_ids (one), group_ids (its groups)",
    "comment.added": "a comment was posted: ids (one), obj_ids (one), group_ids (its groups)",
}

EVENT_SUBSCRIBERS = ConfigPoint(
    name="app.event_subscribers",
    receives="one Event (kind in EVENT_KINDS, obj_ids, ids, group_ids, user_id), after the transaction that "
             "wrote it has committed; called in the writing process, in order, synchronously",
    provides="dotted functions `f(event) -> None`. They run after the commit: what they see is in the database. "
             "They must be quick and must not use the writer's session (open one of their own if needed). An "
             "exception is logged and never fails the write nor stops the other subscribers. A rolled back write "
             "(or savepoint) announces nothing",
    example="""
app: {event_subscribers: [mydist.live.announce]}
# mydist/live.py
def announce(event):
    if event.kind == "photometry.added": queue.put(event.as_dict())
""",
    default=[],
)

LIVE_EVENTS = ExtensionPoint(
    name="live.feed.record_live",
    kind="function",
    receives="the writer's session, a kind `area.what`, the groups that may see the event, and optionally the "
             "object, row ids, a sky position, a one-line summary, a page URL and `data` to filter on",
    provides="an event of the deployment's own kind in the live feed (table live_events, NOTIFY, /api/live), "
             "written in the writer's transaction: nothing is announced unless it commits. Subscriptions of kind "
             "`event` match it by kind and by equality on its `data` fields",
    example="""
from astroportal.live.feed import record_live
record_live(session, "solve.job_state", group_ids=[3], ra=187.2, dec=56.7, summary="job 12 solved",
            url="/solve/jobs/12", data={"instrument_id": 4, "state": "success"})
session.commit()
""",
)

# ==============================================================================================================
# Deployment
# ==============================================================================================================
SERVICE_FOLDERS = ExtensionPoint(
    name="services/<name>/supervisor.conf",
    kind="folder",
    receives="placeholders the launcher fills: {python} {config} {patched} {var} {log_dir} {port} {processes} "
             "{service_dir} {name} and {cfg:DOTTED.KEY} (see the launcher's documentation)",
    provides="a folder per supervised program, holding the program's code and one [program:NAME] section; the "
             "portal's own is services/app/supervisor.conf. A deployment adds folders of its own beside it",
    example="services/app/supervisor.conf: command={python} -m astroportal serve --config {config} --port {port}",
    read_by_launcher=True,
)


def catalogue() -> list[ExtensionPoint]:
    """Every point declared in this module, in the order of the module."""
    return [v for v in globals().values() if isinstance(v, ExtensionPoint)]


def catalogue_json() -> str:
    """The catalogue as JSON, with the page-block places and event kinds."""
    return json.dumps({"points": [p.describe() for p in catalogue()], "page_block_places": PAGE_BLOCK_PLACES,
                       "event_kinds": EVENT_KINDS}, indent=1)
