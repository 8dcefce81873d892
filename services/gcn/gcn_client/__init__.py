"""The distribution's GCN service: notices from GCN's Kafka topics (LVK's igwn.gwalert JSON, Fermi and Swift
VOEvents) into the portal's POST /api/gcn_event.

A service of its own: it speaks to the portal only over HTTP with a token of its own, and never imports the
portal. Delivery is at least once (offsets committed after the portal accepted a notice); the portal recognises
a repeated notice, so each lands once.
"""

import sys as _sys
from pathlib import Path as _Path

# The services' shared library (services/common/) sits beside every service folder (in the source tree, in the
# build, and on a services-only host, where services/ is copied whole).
_COMMON = str(_Path(__file__).resolve().parents[2] / "common")
if _COMMON not in _sys.path:
    _sys.path.insert(0, _COMMON)
