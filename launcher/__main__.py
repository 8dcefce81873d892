"""Entry point: `python -m launcher` or `python path/to/launcher` (as run.sh does)."""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory (python launcher/): make the package importable without touching PYTHONPATH,
    # which would leak into the portal's processes.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from launcher.cli import main  # noqa: E402

raise SystemExit(main())
