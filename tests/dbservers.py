"""Debian's Redis and PostgreSQL for the scale-out tests, started once per session on free ports
in temporary folders (never the machine's own services), and stopped at the end.

PostgreSQL refuses to run as root, and CI runs as root: there the cluster belongs to the
``postgres`` user Debian's package makes (``runuser``), in a folder made for it outside the
test session's 0700 temporary tree. It trusts connections from 127.0.0.1 and runs without
fsync: these are tests, not data.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import _wait_listening, free_port, need


class RedisServer:
    """``redis-server`` on 127.0.0.1, in memory only (no RDB, no AOF)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        need("Debian's redis-server", Path(binary).exists(), "apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        log = folder / "redis.log"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--logfile", str(log)],
        )  # fmt: skip
        _wait_listening(self.port, self.process, log, "redis-server")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A PostgreSQL cluster of its own (``initdb``) on 127.0.0.1; ``url`` names its database
    ``studio``, ``admin_url`` the ``postgres`` one (to make more databases)."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        need("Debian's postgresql", bin_dir is not None, "apt-get install postgresql")
        self.owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            need("the postgres user", _user_exists("postgres"), "apt-get install postgresql")
        self.folder = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        shutil.chown(self.folder, self.owner)
        self.data, self.log = self.folder / "data", self.folder / "postgres.log"
        self.port = free_port()
        self._as_owner([bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--locale=C.UTF-8"])  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._as_owner([bin_dir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options,
                        "-w", "start"])  # fmt: skip
        self.bin_dir = bin_dir
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = self.database("studio")

    def database(self, name: str) -> str:
        """A new, empty database ``name`` (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _as_owner(self, command: list) -> None:
        command = [str(c) for c in command]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}{log}")

    def stop(self) -> None:
        try:
            self._as_owner([self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "stop"])
        finally:
            time.sleep(0.1)
            shutil.rmtree(self.folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def empty_database(url: str) -> None:
    """Drop what the studio's stores made in the database at ``url`` (they make it again)."""
    import psycopg

    from studio.pg import forget_schemas

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS entities CASCADE")
        conn.execute("DROP TABLE IF EXISTS run_file_chunks, run_files, runs CASCADE")
    forget_schemas()


def store_sql(home: Path, sql: str) -> list[tuple]:
    """Run ``sql`` on the entity store the environment chooses (SQLite in ``home``, or the
    ``entities`` schema of ``STUDIO_DATABASE_URL``), as a hand would; the rows it gives."""
    url = os.environ.get("STUDIO_DATABASE_URL")
    if not url:
        import sqlite3

        with sqlite3.connect(home / "entities.sqlite") as db:
            rows = db.execute(sql).fetchall()
        db.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path TO entities")
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []
