"""Drafts of jobs being built, kept in the studio's home, so that a reload or a second tab finds
what was typed (name, calls, mapping, preview limits) and the last test.

A draft lives beside the configs, not among them: the config store's file holds what the runner
runs and its audit trail, and a draft is written at every pause in typing, so drafts have their
own file (``drafts.json``, the same process-safe TinyDB storage as the configs) and never take
the config store's lock. The last test of a draft is a private file of its own
(``drafts/<key>.test.json``): it is written once per test and can be large, so the drafts' file
stays small. Its secrets are masked already (a trace is); it is refused above ``MAX_TEST_BYTES``.

Each draft keeps a digest of the saved job it began from (``base``), so the studio can say when
the job was saved elsewhere since. A draft's preview limits outlive it: they are test
inputs of the job, kept when the draft is saved or discarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from tinydb import Query, TinyDB

from studio.config.jsonfile import AtomicJSONStorage, file_lock
from studio.private import open_private, private_dir

FILE = "drafts.json"
MAX_TEST_BYTES = 20 * 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_key(key: str) -> bool:
    """A key comes from the page's URL: only names that cannot leave the drafts' folder."""
    return bool(_KEY.fullmatch(key or ""))


class DraftStore:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / FILE
        self.tests = self.home / "drafts"

    @contextlib.contextmanager
    def _db(self) -> Iterator[TinyDB]:
        private_dir(self.home)
        with file_lock(self.home / f"{FILE}.lock"):
            yield TinyDB(self.path, storage=AtomicJSONStorage)

    def _doc(self, key: str) -> dict:
        if not valid_key(key):
            return {}
        with self._db() as db:
            return dict(db.get(Query().key == key) or {})

    def _set(self, key: str, **fields) -> None:
        if not valid_key(key):
            raise ValueError(f"not a draft key: {key!r}")
        with self._db() as db:
            db.upsert({"key": key, **fields}, Query().key == key)

    def get(self, key: str) -> dict | None:
        """The draft's data, or None."""
        return self._doc(key).get("data")

    def base(self, key: str) -> str | None:
        """A digest of the saved job the draft began from (None for a new job)."""
        return self._doc(key).get("base")

    def put(self, key: str, data: dict, base: str | None) -> None:
        self._set(key, data=data, base=base, at=datetime.now(UTC).isoformat(timespec="seconds"))

    def drop(self, key: str) -> None:
        """Forget the draft (saved or discarded); its preview limits and last test stay, as
        the job's test inputs and cached responses."""
        if self._doc(key):
            self._set(key, data=None, base=None)

    def limits(self, key: str) -> dict | None:
        return self._doc(key).get("limits")

    def put_limits(self, key: str, limits: dict) -> None:
        self._set(key, limits=dict(limits))

    def get_test(self, key: str) -> dict | None:
        if not valid_key(key):
            return None
        try:
            return json.loads((self.tests / f"{key}.test.json").read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def put_test(self, key: str, test: dict) -> bool:
        """Keep the last test; False when it is too large to keep (it stays in the session)."""
        text = json.dumps(test, ensure_ascii=False, default=str)
        if len(text) > MAX_TEST_BYTES or not valid_key(key):
            return False
        private_dir(self.tests)
        path = self.tests / f"{key}.test.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open_private(tmp) as f:
            f.write(text)
        os.replace(tmp, path)
        return True

    def move(self, old: str, new: str) -> None:
        """A new job was saved: its limits and last test follow it to the job's id."""
        if not (valid_key(old) and valid_key(new)):
            return
        with self._db() as db:
            doc = db.get(Query().key == old)
            db.remove(Query().key == old)
            if doc and doc.get("limits"):
                db.upsert({"key": new, "limits": doc["limits"]}, Query().key == new)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.tests / f"{old}.test.json", self.tests / f"{new}.test.json")
