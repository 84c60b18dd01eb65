"""STUDIO_HOME is its owner's only, whatever the umask: folders 0700, files 0600, written by
real processes; and a passphrase is stretched with a salt of the home's own."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from studio.config.store import ConfigStore
from tests.helpers import (
    ROOT,
    assert_private,
    modes,
    point_demo_at,
    run_python,
    runner,
    sftp_connection,
)


def output_of(code: str, home: Path) -> str:
    """What a separate Python process on ``home`` prints (it must succeed)."""
    process = run_python(code, home, stdout=subprocess.PIPE, text=True)
    out = process.communicate(timeout=60)[0]
    assert process.returncode == 0
    return out.strip()


def test_everything_in_the_home_is_private_under_umask_022(home, sandbox, umask_022):
    """The configs, their lock, the key, the run history, the entity store (with its -wal and
    -shm while open), the run folders and files, the staging file and known_hosts."""
    import sqlite3

    from studio.config.files import EXAMPLES, import_configs
    from studio.config.kinds import CONNECTIONS
    from studio.entities import entity
    from studio.files import FileServerError
    from studio.rowstore import EntityWriter, connect
    from studio.sftp import SftpClient

    store = ConfigStore(home)
    import_configs(store, EXAMPLES)  # secrets sealed: configs.json, its lock, secret.key
    point_demo_at(store, sandbox.url)
    out = runner("run", "Demo suppliers", home=home)  # a real process, inheriting the umask
    assert out.returncode == 0, out.stderr
    assert {"configs.json", "configs.json.lock", "secret.key", "runs.sqlite"} <= set(modes(home))
    assert (home / "entities.sqlite").exists() and any((home / "runs").iterdir())

    db = connect(home)  # the store held open, as the studio holds it: -wal and -shm exist
    writer = EntityWriter(home, entity("Suppliers"), "run-x", ["external_id", "name"])
    writer.write([{"external_id": "S9", "name": "staged"}])
    try:
        db.execute("SELECT COUNT(*) FROM suppliers").fetchone()
        with sqlite3.connect(home / "runs.sqlite") as history:
            history.execute("SELECT COUNT(*) FROM runs").fetchone()
        names = set(modes(home))
        assert {"entities.sqlite-wal", "entities.sqlite-shm", "runs/.run-x.staging.sqlite"} <= names
        conn = CONNECTIONS.validate_config(sftp_connection(host="127.0.0.1", port=9))
        with pytest.raises(FileServerError):  # nothing listens: known_hosts is made first
            SftpClient(conn, home / "known_hosts", timeout=5)
        assert (home / "known_hosts").exists()
        assert_private(home)
    finally:
        writer.close()
        db.close()


def test_a_passphrase_key_uses_a_random_salt_kept_in_the_home(tmp_path, monkeypatch, umask_022):
    """Two homes, one passphrase: two keys. Processes starting at once agree on one salt."""
    from studio.vault import load_key

    monkeypatch.setenv("STUDIO_SECRET_KEY", "correct horse battery staple")
    first, second = tmp_path / "first", tmp_path / "second"
    assert load_key(first) != load_key(second)
    assert stat.S_IMODE((first / "secret.salt").stat().st_mode) == 0o600

    env = {**os.environ, "STUDIO_SECRET_KEY": "correct horse battery staple"}
    code = (
        "from pathlib import Path; from studio.vault import load_key; print(load_key(Path({!r})))"
    )
    third = tmp_path / "third"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code.format(str(third))],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=60)[0] for p in procs}
    assert len(keys) == 1 and all(p.returncode == 0 for p in procs)
    assert sorted(p.name for p in third.iterdir()) == ["secret.salt"]  # no temporary left


def test_a_home_sealed_before_salts_still_opens_with_its_passphrase(home, monkeypatch):
    """Secrets sealed with the old fixed salt: the home keeps that salt, in secret.salt."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    passphrase = "correct horse battery staple"
    kdf = PBKDF2HMAC(hashes.SHA256(), 32, b"connector-studio/v1", 200_000)
    old_key = base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))
    monkeypatch.setenv("STUDIO_SECRET_KEY", old_key.decode())  # as the old code derived it
    ConfigStore(home).create("connections", sftp_connection(), source="cli")
    assert not (home / "secret.salt").exists()

    monkeypatch.setenv("STUDIO_SECRET_KEY", passphrase)
    password = output_of(
        "from studio.config.store import ConfigStore; "
        "print(ConfigStore().get('connections', 'Supplier SFTP', reveal=True).password)",
        home,
    )
    assert password == "sftp-password-value-9"
    assert (home / "secret.salt").read_bytes() == b"connector-studio/v1"
    store = ConfigStore(home)  # and what is sealed now opens too
    store.create("connections", sftp_connection("Second", password="second-pw"), source="cli")
    assert store.get("connections", "Second", reveal=True).password == "second-pw"


def test_making_a_database_private_never_drops_the_locks_of_its_open_connections(home):
    """A connection holds its database while another is made: writes after another process has
    come and gone are kept (closing a descriptor of the file would drop this process's locks,
    and that process would delete the WAL as if it were the last)."""
    from studio.rowstore import connect

    held = connect(home)
    held.execute("CREATE TABLE t (x)")
    connect(home).close()  # makes sure the file is private, as every connect does
    count = (
        "import os, sqlite3; db = sqlite3.connect(os.environ['STUDIO_HOME'] + '/entities.sqlite');"
        " print(db.execute('SELECT COUNT(*) FROM t').fetchone()[0]); db.close()"
    )
    assert output_of(count, home) == "0"  # another process comes and goes
    held.execute("INSERT INTO t VALUES (1)")
    assert output_of(count, home) == "1"
    held.close()
