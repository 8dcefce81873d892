"""Rebuild alembic/versions/0001_initial_schema.py from the models (development only, before the first release).

Usage: python alembic/regenerate_initial.py   (from upstream/; needs PostgreSQL server binaries)
"""

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from alembic import command  # noqa: E402
from pgcluster import PgCluster  # noqa: E402

TAIL = '''    # The enum type outlives its table unless dropped by name.
    sa.Enum(name="instrument_type").drop(op.get_bind(), checkfirst=True)
'''


def main() -> None:
    from astroportal import config, migrations

    target = HERE / "versions" / "0001_initial_schema.py"
    target.unlink(missing_ok=True)
    cluster = PgCluster().start()
    try:
        url = cluster.create_database("regen")
        cfg_file = cluster.root / "c.yaml"
        cfg_file.write_text(f"database:\n  url: {url}\n")
        cfg = config.load(cfg_file)
        command.revision(migrations.alembic_config(cfg), message="initial schema", autogenerate=True, rev_id="0001")
    finally:
        cluster.stop()
    text = target.read_text()
    text = text.replace("branch_labels = None", "branch_labels = ('portal',)")
    text = re.sub(r"Create Date: .*\n", "", text)
    text = text.rstrip("\n") + "\n" + TAIL
    target.write_text(text)
    print(f"rewrote {target}")


if __name__ == "__main__":
    main()
