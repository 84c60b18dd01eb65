"""Hostile values in run files and one runner per home, against real processes."""

from __future__ import annotations

import csv
import io
import signal
import zipfile
from pathlib import Path

import pytest

from studio.entitystore import read_rows
from studio.history import RunHistory
from tests.conftest import free_port
from tests.test_cli import runner
from tests.test_daemon import serve, setup, wait_for
from tests.test_private_home import assert_private, umask_022  # noqa: F401 - a fixture
from tests.test_runs import ftp_connection

HOSTILE = ['=HYPERLINK("http://evil.example/x","click")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0"]


def test_run_files_are_neutralised_but_the_store_and_destination_keep_values(
    store, sandbox, ftp_server
):
    """rows.csv (and so the REST and Runs page downloads) quote what a spreadsheet would run;
    the entity store keeps the values, and so does a destination that asks for them as is."""
    from studio.history import run_archive
    from tests.test_api import Api

    root = ftp_server.root / "hostile"
    (root / "in").mkdir(parents=True, exist_ok=True)
    lines = [["id", "company", "country"]]
    lines += [[f"S{i}", value, "-5"] for i, value in enumerate(HOSTILE)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    (root / "in" / "suppliers.csv").write_text(buffer.getvalue())
    store.create("connections", ftp_connection(ftp_server, "/hostile"), source="cli")
    job = store.create(
        "jobs",
        {
            "kind": "file",
            "name": "Hostile suppliers",
            "connection_id": "FTP",
            "entity": "Suppliers",
            "source": {"mode": "path", "path": "in/suppliers.csv"},
            "mapping": [
                {"extract": "id", "generate": "external_id"},
                {"extract": "company", "generate": "name"},
                {"extract": "country", "generate": "country"},
            ],
            "destination": {
                "enabled": True,
                "connection_id": "FTP",
                "folder": "out",
                "file_name": "suppliers.csv",
                "neutralize_formulas": False,
            },
        },
        source="cli",
    )
    out = runner("run", "Hostile suppliers", home=store.home)
    assert out.returncode == 0, out.stderr
    run = RunHistory(store.home).list(job_id=job.id)[0]
    assert run.status == "success" and run.rows_written == 3

    def csv_rows(text: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(text)))[1:]

    quoted = [[f"S{i}", "'" + value, "-5"] for i, value in enumerate(HOSTILE)]
    assert csv_rows(Path(run.folder, "rows.csv").read_text()) == quoted  # a number stays
    _name, data, _mime = run_archive(run)  # what the Runs page downloads: rows, rejects, log
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert csv_rows(archive.read("rows.csv").decode()) == quoted
    api = Api(store)
    try:
        download = api.get(f"/v1/jobs/{job.id}/download/{run.id}")
        assert download.status_code == 200 and csv_rows(download.text) == quoted
    finally:
        api.stop()

    rows, _total = read_rows(store.home, "Suppliers")
    assert sorted(r["name"] for r in rows) == sorted(HOSTILE)  # data is data
    delivered = csv_rows((root / "out" / "suppliers.csv").read_text())
    assert [r[1] for r in delivered] == HOSTILE  # the destination asked for values as they are
    assert not list(Path(run.folder).glob(".*"))  # no pending or raw file left


# --- one runner per home ---------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_a_second_runner_on_the_same_home_refuses_to_start(store, sandbox, home):
    setup(store, sandbox, status="disabled")
    first = serve(home, free_port())
    try:
        wait_for(lambda: (home / "runner.json").exists(), 30, "the first runner's heartbeat")
        assert_private(home)  # runner.lock and runner.json too
        second = serve(home, free_port())
        try:
            out, _ = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 2
        assert f"another runner (PID {first.pid}) already serves {home}" in out
        assert first.poll() is None  # the first one serves on
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    again = serve(home, free_port())  # the lock went with the first one
    try:
        wait_for(lambda: again.poll() is None and (home / "runner.json").exists(), 30, "a start")
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    assert again.returncode == 0
