"""The run history from the command line (``runs list/show/download/log``), honest counts
(every attempt of a request), and the counts a run saves while it goes: the CLI runs as a
separate process on the same home, the runs against the sandbox."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from runner.cli import build_parser
from studio.config.store import ConfigStore
from studio.runhistory import RunHistory, counts_text
from studio.runs import run_job
from tests.helpers import (
    PRODUCTS,
    ROOT,
    bulk_suppliers_job,
    demo,
    ftp_connection,
    reject_every_product,
    runner,
    slow_products,
    watch,
)


def test_run_summary_counts_every_attempt_and_names_the_files_written(store, sandbox):
    demo(store, sandbox)
    sandbox.fault("/api/products", 503, times=2, retry_after="0")
    out = runner("run", PRODUCTS, home=store.home)
    assert out.returncode == 0, out.stderr
    run = RunHistory(store.home).list()[0]
    lines = out.stdout.splitlines()
    # a token request and five pages: six requests, the first page tried three times
    assert lines[0] == (
        f"run {run.id} of {PRODUCTS!r}: success: 95 records, 95 rows written, 0 rejected, "
        "6 requests, 8 attempts, 5 pages"
    )
    assert lines[1] == f"files written in {run.folder}: rows.csv, rejects.csv, run.log"
    assert (run.requests, run.attempts) == (6, 8)
    again = runner("run", PRODUCTS, "--json", home=store.home)
    assert json.loads(again.stdout)["attempts"] == 6  # no retry: as many attempts as requests
    assert "6 requests, 5 pages" in counts_text(RunHistory(store.home).list()[0])


def test_runs_list_filters_and_prints_json(store, sandbox):
    demo(store, sandbox)
    ok = run_job(store, "Demo suppliers")
    sandbox.fault("/api/suppliers", 404, times=3, body="gone")
    failed = run_job(store, "Demo suppliers")
    products = run_job(store, PRODUCTS)
    table = runner("runs", "list", home=store.home).stdout.splitlines()
    assert table[0].split() == [
        *("RUN", "STARTED", "JOB", "TRIGGER", "BY", "STATUS", "SECONDS", "RECORDS", "ROWS"),
        *("REJECTED", "REQUESTS", "ERROR"),
    ]
    assert [line.split()[0] for line in table[1:]] == [products.id, failed.id, ok.id]
    assert "answered 404 Not Found" in table[2]
    listed = json.loads(runner("runs", "list", "--json", home=store.home).stdout)
    assert [r["id"] for r in listed] == [products.id, failed.id, ok.id]
    assert listed[0]["records"] == 95 and listed[0]["attempts"] == listed[0]["requests"]
    by_job = runner("runs", "list", "--job", "demo suppliers", "--json", home=store.home)
    assert [r["id"] for r in json.loads(by_job.stdout)] == [failed.id, ok.id]
    only_failed = runner("runs", "list", "--status", "failed", "--json", home=store.home)
    assert [r["id"] for r in json.loads(only_failed.stdout)] == [failed.id]
    latest = runner("runs", "list", "-n", "1", "--json", home=store.home)
    assert [r["id"] for r in json.loads(latest.stdout)] == [products.id]
    store.delete("jobs", "Demo suppliers", source="cli")  # its runs can still be listed
    gone = runner("runs", "list", "--job", "Demo suppliers", "--json", home=store.home)
    assert [r["id"] for r in json.loads(gone.stdout)] == [failed.id, ok.id]
    missing = runner("runs", "list", "--job", "nothing", home=store.home)
    assert (missing.returncode, missing.stderr) == (2, "error: No job called 'nothing'\n")
    bad = runner("runs", "list", "--status", "done", home=store.home)
    assert bad.returncode == 2 and "invalid choice: 'done'" in bad.stderr


@pytest.mark.usefixtures("backend")  # with PostgreSQL, the CLI reads the files from there
def test_runs_show_and_log(store, sandbox):
    demo(store, sandbox)
    sandbox.fault("/api/products", 503, times=1, retry_after="0")
    run = run_job(store, PRODUCTS)
    shown = runner("runs", "show", run.id[:6], home=store.home)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"run {run.id} of {PRODUCTS!r}: success"
    counts = "95 records, 95 rows written, 0 rejected, 6 requests, 7 attempts, 5 pages"
    assert f"  counts:        {counts}" in lines
    assert any(line.startswith("  started:       20") and line.endswith(" UTC") for line in lines)
    assert any(line.startswith("  finished:      20") and line.endswith(" s)") for line in lines)
    assert any(line.startswith("  files:         rows.csv (") for line in lines)
    assert any(line.strip().startswith("run.log (") for line in lines)
    as_json = json.loads(runner("runs", "show", run.id, "--json", home=store.home).stdout)
    assert as_json["id"] == run.id and as_json["attempts"] == 7
    log = runner("runs", "log", run.id, home=store.home).stdout.splitlines()
    assert log[0].split()[1:4] == ["exchange", "token", "POST"]
    first_page = next(line for line in log if "Call 1 (Products) GET" in line)
    assert "  retried: 503" in first_page and "/api/products?" in first_page
    assert sum(line.split()[1] == "page" for line in log) == 5
    assert "demo-secret" not in "\n".join(log)
    entries = json.loads(runner("runs", "log", run.id, "--json", home=store.home).stdout)
    assert entries[1]["attempts"] == 2 and entries[1]["retries"] == ["503"]
    unknown = runner("runs", "show", "zzzz", home=store.home)
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "error: There is no run whose id starts with 'zzzz'\n",
    )


@pytest.mark.usefixtures("backend")
def test_runs_download_copies_the_data_files(store, sandbox, tmp_path):
    demo(store, sandbox)
    run = run_job(store, PRODUCTS)
    one = runner("runs", "download", run.id, str(tmp_path / "one"), home=store.home)
    assert (one.returncode, one.stdout) == (0, f"{tmp_path / 'one' / 'rows.csv'}\n")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["rows.csv"]
    with open(tmp_path / "one" / "rows.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 96
    again = runner("runs", "download", run.id, str(tmp_path / "one"), home=store.home)
    assert again.returncode == 2 and "already there; --force overwrites" in again.stderr
    forced = runner("runs", "download", run.id, str(tmp_path / "one"), "--force", home=store.home)
    assert forced.returncode == 0
    reject_every_product(store)
    partial = run_job(store, PRODUCTS)
    several = runner("runs", "download", partial.id, str(tmp_path / "two"), home=store.home)
    assert several.returncode == 0, several.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["rejects.csv", "rows.csv"]
    here = tmp_path / "here"  # without DIR: into the current folder
    here.mkdir()
    env = {"STUDIO_HOME": str(store.home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    env |= {k: v for k, v in os.environ.items() if k == "STUDIO_DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "runner", "runs", "download", partial.id],
        cwd=here,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (0, "rows.csv\nrejects.csv\n")
    assert sorted(p.name for p in here.iterdir()) == ["rejects.csv", "rows.csv"]


def test_a_file_job_says_how_many_files_it_read(store, ftp_server):
    root = ftp_server.root / "cli-runs"
    (root / "in").mkdir(parents=True, exist_ok=True)
    (root / "in" / "a.csv").write_text("id;company\nS1;Acme\n")
    (root / "in" / "b.csv").write_text("id;company\nS2;Bolt\n")
    store.create("connections", ftp_connection(ftp_server, "/cli-runs"), source="cli")
    store.create("jobs", bulk_suppliers_job(), source="cli")
    out = runner("run", "Suppliers files", home=store.home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith(
        ": success: 2 records, 2 rows written, 0 rejected, 0 requests, 2 pages, 2 files read"
    )


def test_every_listing_command_prints_a_json_array(store, sandbox):
    """Every ``list`` of the CLI takes ``--json``; what it prints is an array of objects, and
    never a secret nor a token's hash."""
    lists = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))
        if path and path[-1] == "list":
            lists.append(path)
            assert any("--json" in a.option_strings for a in parser._actions), path

    walk(build_parser(), ())
    assert sorted(lists) == [
        ("api-token", "list"),
        ("connections", "list"),
        ("entities", "list"),
        ("jobs", "list"),
        ("runs", "list"),
        ("users", "list"),
    ]
    demo(store, sandbox)
    from studio.users import add_user

    add_user(store, "ana", "a password of ana's", "editor")
    run_job(store, "Demo suppliers")
    from studio.apitokens import create_token

    token = create_token(store, "erp")
    for path in lists:
        out = runner(*path, "--json", home=store.home)
        assert out.returncode == 0, out.stderr
        items = json.loads(out.stdout)
        assert items and all(isinstance(item, dict) for item in items), path
        assert "demo-secret" not in out.stdout and token not in out.stdout
        assert "argon2" not in out.stdout and "a password of ana's" not in out.stdout
    tokens = json.loads(runner("api-token", "list", "--json", home=store.home).stdout)
    assert tokens == [
        {
            "name": "erp",
            "prefix": token[:7],
            "user": "",
            "role": "admin",  # a token with no user was made by someone with the machine
            "status": "active",
            "expires_at": None,
            "expired": False,
            "created_at": tokens[0]["created_at"],
        }
    ]


def test_a_running_run_shows_its_counts_so_far(store, sandbox):
    demo(store, sandbox)
    slow_products(store, 1)  # five pages of a second each
    history = RunHistory(store.home)
    claimed = history.start_run("demojobproducts1", PRODUCTS, "manual")
    thread = threading.Thread(target=run_job, args=(store, PRODUCTS), kwargs={"run": claimed})
    thread.start()
    try:
        live = watch(history, claimed.id, lambda r: r.status != "running" or r.records > 0)
        assert live.status == "running", "the run ended before its counts were seen"
        assert live.records > 0 and live.rows_written > 0 and live.pages > 0
        assert live.requests > 0 and live.attempts >= live.requests
        shown = runner("runs", "show", claimed.id, home=store.home).stdout
        assert shown.splitlines()[0] == f"run {claimed.id} of {PRODUCTS!r}: running"
        assert "  counts so far: " in shown and "  counts so far: 0 records" not in shown
        early = runner("runs", "download", claimed.id, home=store.home)
        assert (early.returncode, early.stderr) == (
            2,
            f"error: Run {claimed.id} is still running; download it when done\n",
        )
    finally:
        thread.join(timeout=60)
    done = history.get(claimed.id)
    assert (done.status, done.records, done.rows_written, done.pages) == ("success", 95, 95, 5)
    assert done.requests == done.attempts == 6


def test_a_history_from_before_attempts_gets_the_column(home):
    """Runs recorded before attempts (and discards) were counted say their requests only."""
    home.mkdir(parents=True)
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.execute(
            "CREATE TABLE runs (id TEXT PRIMARY KEY, job_id TEXT, job_name TEXT,"
            " trigger TEXT, status TEXT, started_at TEXT, finished_at TEXT, slot TEXT,"
            " requests INTEGER, pages INTEGER, records INTEGER, rows_written INTEGER,"
            " rows_rejected INTEGER, files INTEGER, error TEXT, folder TEXT, outputs TEXT)"
        )
        db.execute(
            "INSERT INTO runs VALUES ('abc123def456', 'j', 'Old job', 'manual', 'success',"
            " '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:05+00:00', '', 3, 1, 10, 10, 0,"
            " 0, '', '', '[]')"
        )
    old = RunHistory(home).get("abc123def456")
    assert (old.requests, old.attempts, old.discarded, old.started_by) == (3, 0, 0, "")
    assert counts_text(old) == "10 records, 10 rows written, 0 rejected, 3 requests, 1 page"
    shown = runner("runs", "show", "abc123", home=home)
    assert "  counts:        10 records, 10 rows written, 0 rejected, 3 requests, 1 page" in (
        shown.stdout
    )


@pytest.mark.parametrize("command", [("runs", "show"), ("runs", "log"), ("runs", "download")])
def test_an_unknown_run_is_one_readable_line(home, command):
    ConfigStore(home)
    out = runner(*command, "0123456789ab", home=home)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "error: There is no run whose id starts with '0123456789ab'\n"
