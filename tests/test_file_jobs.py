"""File jobs end to end against the FTP, FTPS and SFTP servers: single file, bulk with a bad
file, CSV variants, preview, and the CSV destination with Celigo's options."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from studio.config.jobs import CsvDestination, FileJob
from studio.destination import CsvFile, cell, file_name
from studio.files import connect
from studio.filesource import import_files, preview_file

MAPPING = [
    {"extract": "id", "generate": "external_id"},
    {"extract": "company", "generate": "name"},
    {"extract": "country", "generate": "country"},
]


class ListSink:
    """Rows committed per file, as the entity store will do in a run."""

    def __init__(self):
        self.pending, self.committed, self.rejects = [], [], []

    def write(self, rows, rejects, discarded=0):
        self.pending += rows
        self.rejects += rejects

    def commit(self):
        self.committed += self.pending
        self.pending = []

    def rollback(self):
        self.pending = []


def file_job(**source) -> FileJob:
    csv = source.pop("csv", {"delimiter": ";"})
    return FileJob(
        name="Suppliers",
        connection_id="c",
        entity="Suppliers",
        source=source,
        csv=csv,
        mapping=MAPPING,
    )


def write(path, text: str, encoding: str = "utf-8", age: float = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))


def test_single_file_with_quoted_newlines_and_a_bom(server, home):
    conn, local = server
    write(
        local / "folder/sub-folder/suppliers.csv",
        '\ufeffid;company;country\nS1;"Acme; Inc.\nParis";FR\nS2;Globex;DE\n',
    )
    sink = ListSink()
    with connect(conn, home) as client:
        report = import_files(
            file_job(mode="path", path="folder/sub-folder/suppliers.csv"), client, sink
        )
    assert [f.error for f in report.files] == [""]
    assert sink.committed == [
        {"external_id": "S1", "name": "Acme; Inc.\nParis", "country": "FR"},
        {"external_id": "S2", "name": "Globex", "country": "DE"},
    ]
    assert (local / "folder/sub-folder/suppliers.csv").exists()  # a single path is not moved


def test_bulk_imports_oldest_first_moves_done_files_and_keeps_the_bad_one(server, home):
    conn, local = server
    write(local / "in/b.csv", "id;company;country\nS2;Globex;DE\n", age=100)
    write(local / "in/a.csv", "id;company;country\nS1;Acme;FR\n", age=200)
    write(local / "in/bad.csv", "id,company,country\nS3,Initech,US\n", age=50)  # wrong delimiter
    write(local / "in/empty.csv", "", age=40)
    write(local / "in/notes.txt", "not a csv", age=10)
    write(local / "out/a.csv", "an older a.csv already there\n")
    sink = ListSink()
    job = file_job(mode="bulk", inbound="in", pattern="*.csv", outbound="out")
    with connect(conn, home) as client:
        report = import_files(job, client, sink)
    assert [f.path for f in report.files] == ["in/a.csv", "in/b.csv", "in/bad.csv", "in/empty.csv"]
    assert [r["external_id"] for r in sink.committed] == ["S1", "S2"]
    [bad] = report.failed
    assert bad.error == (
        "in/bad.csv: 1 column found with the delimiter semicolon; the delimiter may be ',' (comma)"
    )
    assert sorted(p.name for p in (local / "in").iterdir()) == ["bad.csv", "notes.txt"]
    out = sorted(p.name for p in (local / "out").iterdir())
    assert "b.csv" in out and "empty.csv" in out and "a.csv" in out
    renamed = [n for n in out if n.startswith("a-") and n.endswith("Z.csv")]
    assert len(renamed) == 1  # a.csv was taken: a timestamp suffix
    assert (local / "out" / "a.csv").read_text() == "an older a.csv already there\n"


def test_bulk_moves_a_failed_file_to_the_error_folder(server, home):
    conn, local = server
    write(local / "in/bad.csv", "id,company\nS3,Initech\n")
    job = file_job(mode="bulk", inbound="in", outbound="out", error_folder="error")
    with connect(conn, home) as client:
        report = import_files(job, client, ListSink())
    assert report.failed[0].moved_to == "error/bad.csv"
    assert (local / "error/bad.csv").exists() and not (local / "in/bad.csv").exists()


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("latin-1", "\t"), ("cp1252", "|"), ("utf-8-sig", ",")]
)
def test_encodings_and_delimiters(server, home, encoding, delimiter):
    conn, local = server
    write(
        local / "x.csv",
        delimiter.join(["id", "company", "country"])
        + "\n"
        + delimiter.join(
            ["S1", "Société Générale €" if encoding == "cp1252" else "Société Générale", "FR"]
        )
        + "\n",
        encoding="utf-8-sig" if encoding == "utf-8-sig" else encoding,
    )
    sink = ListSink()
    job = file_job(mode="path", path="x.csv", csv={"delimiter": delimiter, "encoding": encoding})
    with connect(conn, home) as client:
        assert not import_files(job, client, sink).failed
    assert sink.committed[0]["name"].startswith("Société Générale")


def test_wrong_encoding_and_missing_file_are_reported(server, home):
    conn, local = server
    write(local / "latin.csv", "id;company;country\nS1;Soci\xe9t\xe9;FR\n", encoding="latin-1")
    with connect(conn, home) as client:
        report = import_files(file_job(mode="path", path="latin.csv"), client, ListSink())
        assert report.failed[0].error.startswith("latin.csv: byte ")
        assert "is not utf-8 text; choose the file's encoding" in report.failed[0].error
        missing = import_files(file_job(mode="path", path="nope.csv"), client, ListSink())
        assert "not found" in missing.failed[0].error


def test_preview_reads_the_first_rows_and_suggests_the_delimiter(server, home):
    conn, local = server
    rows = "".join(f"S{i},Company {i},FR\n" for i in range(1, 1001))
    write(local / "in/first.csv", "id,company,country\n" + rows, age=100)
    write(local / "in/second.csv", "id,company,country\nS9,Other,DE\n", age=10)
    job = file_job(mode="bulk", inbound="in", outbound="out", csv={"delimiter": ","})
    trace = preview_file(job, conn, home, max_records=50)
    assert trace.error is None and len(trace.records) == 50 and len(trace.rows) == 50
    assert trace.log[0] == "Reading in/first.csv (first of 2 inbound files)"
    assert trace.stopped == ["stopped after 50 records: preview limit"]
    wrong = preview_file(file_job(mode="path", path="in/first.csv"), conn, home)
    assert "The first lines suggest the delimiter ','" in wrong.log
    assert wrong.error.endswith("the delimiter may be ',' (comma)")
    assert sorted(p.name for p in (local / "in").iterdir()) == ["first.csv", "second.csv"]


def test_destination_options_and_atomic_upload(server, home):
    conn, local = server
    dest = CsvDestination(
        enabled=True,
        connection_id="c",
        folder="exports/daily",
        file_name="{{job}}-{{date}}-{{run_id}}.csv",
        column_delimiter=";",
        row_delimiter="\r\n",
        wrap_with_quotes=True,
        replace_newline_with_space=True,
        replace_tab_with_space=True,
    )
    out = CsvFile(dest, ["external_id", "name", "price"])
    out.write(
        [
            {"external_id": "S1", "name": '=HYPERLINK("x")', "price": -5.5},
            {"external_id": "S2", "name": "two\nlines\tand tab", "price": None},
            {"external_id": "S3", "name": "-12.5", "price": 3},
        ]
    )
    now = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    with connect(conn, home) as client:
        target = out.deliver(client, job="Nightly suppliers", run_id="r1", now=now)
    assert target == "exports/daily/Nightly-suppliers-2026-11-22-r1.csv"
    assert (local / target).read_bytes().decode() == (
        '"external_id";"name";"price"\r\n'
        '"S1";"\'=HYPERLINK(""x"")";"-5.5"\r\n'
        '"S2";"two lines and tab";""\r\n'
        '"S3";"-12.5";"3"\r\n'
    )
    assert [p.name for p in (local / "exports/daily").iterdir()] == [
        "Nightly-suppliers-2026-11-22-r1.csv"
    ]


def test_cell_and_file_name_rules():
    plain = CsvDestination()
    assert cell("@SUM(A1)", plain) == "'@SUM(A1)" and cell("+33 1 23", plain) == "'+33 1 23"
    assert cell("-3", plain) == "-3" and cell(-3, plain) == "-3"
    assert cell("=1+1", CsvDestination(neutralize_formulas=False)) == "=1+1"
    assert (
        file_name("file-{{timestamp}}.csv", job="j", run_id="r", now=datetime(2026, 1, 2, 3, 4, 5))
        == "file-20260102T030405Z.csv"
    )


def test_a_mapping_column_missing_from_the_file_fails_that_file(server, home):
    conn, local = server
    write(local / "x.csv", "id;firm;country\nS1;Acme;FR\n")
    with connect(conn, home) as client:
        report = import_files(file_job(mode="path", path="x.csv"), client, ListSink())
    assert report.failed[0].error == (
        "x.csv: the mapping reads column 'company', which the file does not have (its columns: "
        "id, firm, country)"
    )


def test_a_download_for_people_neutralises_formulas_and_keeps_numbers():
    from studio.destination import people_csv

    text = people_csv(
        [
            {"id": '=HYPERLINK("http://x")', "price": -3.5, "note": "@SUM(A1)"},
            {"id": "P2", "price": None, "extra": "+cmd"},
        ]
    )
    assert text == (
        'id,price,note,extra\n"\'=HYPERLINK(""http://x"")",-3.5,\'@SUM(A1),\nP2,,,\'+cmd\n'
    )
