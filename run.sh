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

# requirements.txt includes upstream/requirements.txt: a change in either refreshes .venv.
want="$(cat "$requirements" "$here/upstream/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  (
    # One refresh at a time, however many ./run.sh start together.
    mkdir -p "$venv"
    exec 9>"$venv/.lock"
    flock 9
    if [ ! -x "$venv/bin/python" ]; then
      echo "run.sh: creating .venv" >&2
      python3 -m venv "$venv"
      "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      echo "run.sh: installing requirements.txt into .venv" >&2
      if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2; then
        echo "run.sh: pip could not install requirements.txt (see above); .venv left as it was" >&2
        exit 1
      fi
      echo "$want" >"$stamp"
    fi
  )
fi

# Running the package directory (not `-m`) keeps the caller's working directory and PYTHONPATH untouched.
exec "$venv/bin/python" "$here/launcher" "$@"
