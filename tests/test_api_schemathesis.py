"""schemathesis against the served OpenAPI document: no 5xx, no response that breaks the schema."""

from __future__ import annotations

import subprocess
import sys

from studio.config.files import EXAMPLES, import_configs
from studio.config.store import ConfigStore
from tests.helpers import point_demo_at
from tests.servers import Api


def test_schemathesis_finds_no_server_error_and_no_schema_break(tmp_path, sandbox):
    store = ConfigStore(tmp_path / "home")
    import_configs(store, EXAMPLES)
    point_demo_at(store, sandbox.url)
    api = Api(store)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{api.url}/openapi.json",
                "-H",
                f"Authorization: {api.session.headers['Authorization']}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "10",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,  # schemathesis keeps its cache in the working folder
        )
    finally:
        api.stop()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1]
