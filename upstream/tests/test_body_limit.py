"""An oversized request body is refused with a clear 413 before it is read, and nothing is written."""

import pytest
import yaml
from sqlalchemy import func, select

from conftest import Api, Server, free_port, unique


@pytest.fixture(scope="module")
def small_server(config_path, tmp_path_factory):
    """A second portal process on the same database, with a 0.01 MB (about 10 kB) body limit."""
    data = yaml.safe_load(config_path.read_text())
    data["server"]["port"] = free_port()
    data["server"]["max_body_mb"] = 0.01
    path = tmp_path_factory.mktemp("small") / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    srv = Server(path)
    yield Api(srv.url)
    srv.stop()


def test_oversized_source_is_refused_and_not_written(small_server, admin_token, db):
    from astroportal.models import Obj

    obj_id = unique()
    body = {"id": obj_id, "ra": 10.0, "dec": 20.0, "alias": ["x" * 100] * 200}
    status, answer = small_server.post("/api/sources", admin_token, json=body)
    assert status == 413
    assert answer["status"] == "error" and "larger than the limit" in answer["message"]
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Obj).where(Obj.id == obj_id)) == 0


def test_oversized_photometry_batch_is_refused(small_server, admin_token, db):
    from astroportal.models import Photometry

    with db() as session:
        before = session.scalar(select(func.count()).select_from(Photometry))
    n = 2000
    body = {"obj_id": unique(), "instrument_id": 1, "mjd": [59000 + i for i in range(n)], "filter": "ztfg",
            "mag": [19.0] * n, "magerr": [0.1] * n, "magsys": "ab"}
    status, answer = small_server.put("/api/photometry", admin_token, json=body)
    assert status == 413 and "bytes" in answer["message"]
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Photometry)) == before


def test_body_under_the_limit_is_served(small_server, admin_token):
    status, answer = small_server.post("/api/sources", admin_token, json={"id": unique(), "ra": 1.0, "dec": 2.0})
    assert status == 200, answer
