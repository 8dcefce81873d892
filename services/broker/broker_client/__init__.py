"""The distribution's broker client: Fink alerts (Kafka livestream, REST API or Avro files) into the portal.

A service of its own: it speaks to the portal only over HTTP with a token of its own, and never imports the
portal. Delivery is at least once into idempotent writes, which makes every alert land exactly once.
"""

import sys as _sys
from pathlib import Path as _Path

# The services' shared library (services/common/) sits beside every service folder (in the source tree, in the
# build, and on a services-only host, where services/ is copied whole).
_COMMON = str(_Path(__file__).resolve().parents[2] / "common")
if _COMMON not in _sys.path:
    _sys.path.insert(0, _COMMON)
