"""`./run.sh build`: the overlay build, its summary, and the provenance and secrets warnings."""

from __future__ import annotations

from . import config as configmod
from . import database, merge3, overlay, provenance, update_swap
from .errors import info, warn


def build(cfg: configmod.Config, force: bool = False, accept: list[str] | None = None,
          stage=None) -> overlay.BuildResult:
    """Build patched/ for `cfg` (or, with `stage`, a new tree there, patched/ untouched); print the summary and any
    warnings; return the result."""
    project = cfg.project
    if note := update_swap.recover(project.root):  # an update killed half-way: finish (or drop) it first
        info(f"update: {note}")
    for where in configmod.tracked_secrets(cfg):
        warn(f"a secret is set in a tracked file: {where}; put it in config.yaml (git-ignored) or the environment")
    manifest = provenance.load(project)  # a broken manifest stops the build before anything changes
    merge3.refuse_conflicted(project.extensions, list(manifest["overrides"]))  # an update's unresolved merge
    database.prepare(cfg)  # the portal's file carries the embedded database's generated password
    result, inputs = overlay.build(project, configmod.render_portal_file(cfg), cfg.var.run, force=force,
                                     stage=stage)
    info(result.summary(_shown(stage or project.patched, project.root)))
    report = provenance.check(project, inputs, accept)
    if report.recorded:
        info(f"provenance: recorded the upstream base of {len(report.recorded)} new override(s)/deletion(s) in "
             f"extensions/{provenance.MANIFEST}: {', '.join(report.recorded)}")
    if report.accepted:
        info(f"provenance: accepted today's upstream for {', '.join(report.accepted)}")
    if report.dropped:
        info(f"provenance: dropped {', '.join(report.dropped)} (no longer overridden or deleted)")
    if report.newly_overtaken:
        info(f"provenance: upstream added {', '.join(report.newly_overtaken)}, which extensions/ adds too: "
             f"recorded upstream's file as the base in extensions/{provenance.MANIFEST}")
    if report.overtaken:
        warn(f"upstream now has {len(report.overtaken)} file(s) that extensions/ adds; each addition became an "
             "override and hides upstream's file:\n"
             + "\n".join(f"  {p}" for p in report.overtaken)
             + "\n  review with ./run.sh diff PATH (keep ours, port upstream's, or delete extensions/PATH), then "
               "record with ./run.sh build --accept-upstream PATH")
    if report.stale:
        lines = [f"  {s.path} ({s.kind}; recorded upstream {s.recorded[:12]}, upstream now {s.current[:12]})"
                 for s in report.stale]
        warn(f"upstream changed under {len(report.stale)} file(s) of the overlay since they were made:\n"
             + "\n".join(lines)
             + "\n  review with ./run.sh diff PATH, then record with ./run.sh build --accept-upstream PATH")
    if report.unrecoverable:
        warn(f"the upstream base of {', '.join(report.unrecoverable)} is in neither extensions/{overlay.BASES_DIR}/ "
             "nor git history: a three-way merge on update cannot use it; review with ./run.sh diff PATH, then "
             "./run.sh build --accept-upstream PATH records today's upstream file as the base")
    return result


def _shown(path, root) -> str:
    try:
        return str(path.relative_to(root)) + "/"
    except ValueError:
        return str(path) + "/"
