"""The demo configs import cleanly and every demo job previews against the sandbox."""

from __future__ import annotations

import json

import pytest

from studio.config.files import EXAMPLES, import_configs
from studio.engine import preview
from studio.runs import load_job
from tests.helpers import point_demo_at

JOBS = sorted(json.loads(p.read_text("utf-8"))["name"] for p in (EXAMPLES / "jobs").glob("*.json"))


@pytest.fixture
def demo_store(store, sandbox):
    outcomes = import_configs(store, EXAMPLES)
    assert [o for o in outcomes if o.action != "create"] == []
    # Point the demo connection at this session's sandbox instead of port 8765.
    point_demo_at(store, sandbox.url)
    return store


@pytest.mark.parametrize("name", JOBS)
def test_every_demo_job_previews_without_error_or_reject(demo_store, name):
    job, conn = load_job(demo_store, name)
    trace = preview(job, conn, max_pages=10, max_records=1000)
    assert trace.error is None, trace.error
    assert trace.rejects == []
    assert trace.rows and len(trace.rows) == len(trace.records)
