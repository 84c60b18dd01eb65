"""Hostile input in runs: values a spreadsheet would run as formulas, against real processes."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from studio.entitystore import read_rows
from studio.history import RunHistory
from tests.test_cli import runner
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
