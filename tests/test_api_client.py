"""A client generated from docs/openapi.json by a standard generator (openapi-python-client)
performs Celigo's walk-through against the running API: create an import, rename it, clone
it, invoke it, delete both. If the document lies about a body or an answer, this fails."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from studio.config.files import EXAMPLES, import_configs
from studio.config.store import ConfigStore
from tests.helpers import ROOT, point_demo_at
from tests.servers import Api


@pytest.fixture(scope="module")
def client_package(tmp_path_factory):
    """The generated package, importable as ``cs_client``."""
    folder = tmp_path_factory.mktemp("generated")
    generator = shutil.which("openapi-python-client", path=str(ROOT / ".venv" / "bin"))
    generator = generator or shutil.which("openapi-python-client")
    assert generator, "openapi-python-client is missing: pip install -e '.[test]'"
    out = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(ROOT / "docs" / "openapi.json"),
            "--output-path",
            str(folder / "cs_client"),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    assert (folder / "cs_client" / "client.py").exists(), out.stdout + out.stderr
    assert "Unable to process schema" not in out.stdout + out.stderr, out.stdout + out.stderr
    sys.path.insert(0, str(folder))
    yield importlib.import_module("cs_client")
    sys.path.remove(str(folder))


def test_a_generated_client_does_the_celigo_walk_through(client_package, tmp_path, sandbox):
    from cs_client.api.imports import (
        clone_import,
        create_import,
        delete_import,
        get_import,
        invoke_import,
        replace_import,
    )
    from cs_client.models import ApiJob, Error, Run

    store = ConfigStore(tmp_path / "home")
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox.url)
    api = Api(store)
    try:
        token = api.session.headers["Authorization"].removeprefix("Bearer ")
        client = client_package.AuthenticatedClient(base_url=api.url, token=token)
        body = ApiJob.from_dict(
            {
                "kind": "api",
                "name": "Suppliers from the client",
                "connection_id": "Demo sandbox",
                "entity": "Suppliers",
                "calls": [{"path": "/suppliers"}],
                "content_finder": "$.suppliers",
                "mapping": [
                    {"extract": "$.supplierId", "generate": "external_id"},
                    {"extract": "$.companyName", "generate": "name"},
                ],
            }
        )
        created = create_import.sync(client=client, body=body)
        assert isinstance(created, ApiJob), created
        assert created.connection_id == store.get("connections", "Demo sandbox").id
        renamed = replace_import.sync(
            created.id,
            client=client,
            body=ApiJob.from_dict(created.to_dict() | {"name": "Suppliers (renamed)"}),
        )
        assert isinstance(renamed, ApiJob) and renamed.name == "Suppliers (renamed)"
        copy = clone_import.sync(created.id, client=client)
        assert isinstance(copy, ApiJob) and copy.name == "Copy of Suppliers (renamed)"
        run = invoke_import.sync(created.id, client=client)
        assert isinstance(run, Run), run
        assert (run.status, run.rows_written) == ("success", 4)
        for ref in (copy.id, created.id):
            assert delete_import.sync_detailed(ref, client=client).status_code == 204
        missing = get_import.sync(created.id, client=client)
        assert isinstance(missing, Error) and missing.error.startswith("No import called")
    finally:
        api.stop()
