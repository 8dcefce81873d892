#!/usr/bin/env bash
# The one entry point: keeps .venv in step with requirements.txt, then hands over to the launcher.
#   ./run.sh run      start the portal (embedded database) and return once it answers
#   ./run.sh test     run every test
#   ./run.sh --help   every command
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

# requirements.txt includes upstream/requirements.txt (-r): a change in either refreshes .venv.
want="$(cat "$requirements" "$here/upstream/requirements.txt" | sha256sum | cut -d' ' -f1)"
# The stamp is written only after pip installed everything into a working .venv, so a matching stamp is
# enough on the fast path; anything else (first use, changed requirements, a half-made .venv) goes below.
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  (
    # One refresh at a time, however many ./run.sh start together (the lock stays while .venv is remade).
    mkdir -p "$venv"
    exec 9>"$venv/.lock"
    flock 9
    empty_venv() { find "$venv" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +; }
    # `python3 -m venv` that fails half-way (Debian without python3-venv) leaves bin/python without pip,
    # and every later pip install would fail: such a .venv is removed and made again.
    if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
      echo "run.sh: .venv is broken (its python has no pip): removing it" >&2
      empty_venv
    fi
    if [ ! -x "$venv/bin/python" ]; then
      if ! command -v python3 >/dev/null 2>&1; then
        echo "run.sh: python3 not found: install Python 3 (Debian: apt-get install python3 python3-venv)" >&2
        exit 1
      fi
      echo "run.sh: creating .venv" >&2
      empty_venv  # whatever a failed attempt left
      if ! python3 -m venv "$venv" >&2 || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        empty_venv
        echo "run.sh: could not create .venv with pip (python3 -m venv failed, see above): install the" \
          "venv module (Debian: apt-get install python3-venv), then run ./run.sh again" >&2
        exit 1
      fi
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2 ||
        echo "run.sh: warning: could not upgrade pip in .venv (going on with the one it has)" >&2
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      echo "run.sh: installing requirements.txt into .venv" >&2
      if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2; then
        echo "run.sh: pip could not install requirements.txt (see above); run ./run.sh again once fixed" >&2
        exit 1
      fi
      echo "$want" >"$stamp"
    fi
  )
fi

# Running the package directory (not `-m`) keeps the caller's working directory and PYTHONPATH untouched.
exec "$venv/bin/python" "$here/launcher" "$@"
