"""Drafts of jobs being built, kept in the studio's home, so that a reload or a second tab finds
what was typed (name, calls, mapping, preview limits) and the last test.

A draft lives beside the configs, not among them: the config store's file holds what the runner
runs and its audit trail, under a lock the runner and the CLI share, and every write is fsynced;
a draft is written at every pause in typing, so it must cost less than the keystroke's redraw.
Each draft is one small private file (``drafts/<key>.json``, 0600) replaced atomically (written
aside, then renamed: a reader sees the old draft or the new one, never half), not fsynced (a
draft lost to a power cut is a draft, not a config). Two tabs on one draft: the last pause wins.
The last test of a draft is a file of its own (``drafts/<key>.test.json``): it is written once per
test and can be large. Its secrets are masked already (a trace is); it is refused above
``MAX_TEST_BYTES``.

Each draft keeps a digest of the saved job it began from (``base``), so the studio can say when
the job was saved elsewhere since. A draft's preview limits outlive it: they are test inputs of
the job, kept when the draft is saved or discarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from studio.private import open_private, private_dir

MAX_TEST_BYTES = 20 * 1024 * 1024
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_key(key: str) -> bool:
    """A key comes from the page's URL: only names that cannot leave the drafts' folder."""
    return bool(_KEY.fullmatch(key or ""))


class DraftStore:
    def __init__(self, home: Path):
        self.folder = Path(home) / "drafts"

    def _path(self, key: str, suffix: str = "json") -> Path:
        if not valid_key(key):
            raise ValueError(f"not a draft key: {key!r}")
        return self.folder / f"{key}.{suffix}"

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            return json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, path: Path, text: str) -> None:
        private_dir(self.folder)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open_private(tmp) as f:
            f.write(text)
        os.replace(tmp, path)

    def _doc(self, key: str) -> dict:
        return self._read(self._path(key)) if valid_key(key) else {}

    def _set(self, key: str, **fields) -> None:
        path = self._path(key)
        self._write(path, json.dumps(self._read(path) | fields, ensure_ascii=False, default=str))

    def get(self, key: str) -> dict | None:
        """The draft's data, or None."""
        return self._doc(key).get("data")

    def base(self, key: str) -> str | None:
        """A digest of the saved job the draft began from (None for a new job)."""
        return self._doc(key).get("base")

    def revision(self, key: str) -> int:
        """How many times the draft was written: a tab that finds another number than the one
        it last read or wrote knows another tab wrote since."""
        return self._doc(key).get("rev", 0)

    def put(self, key: str, data: dict | None, base: str | None, job_id: str = "") -> int:
        """Keep ``data`` (None: no draft) of the job ``job_id`` (none yet for a new job);
        returns the draft's new revision."""
        rev = self.revision(key) + 1
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self._set(key, data=data, base=base, at=at, rev=rev, job_id=job_id)
        return rev

    def prune(self, days: int = 30) -> int:
        """Forget drafts nobody touched for ``days`` (a tab closed on a new job, say)."""
        cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
        gone = 0
        for path in self.folder.glob("*.json"):
            doc = self._read(path)
            if doc.get("data") is not None and doc.get("at", "") < cutoff:
                path.unlink(missing_ok=True)
                (self.folder / f"{path.stem}.test.json").unlink(missing_ok=True)
                gone += 1
        return gone

    def drop(self, key: str) -> int:
        """Forget the draft (saved or discarded); its preview limits and last test stay, as
        the job's test inputs and cached responses. Returns the draft's revision."""
        if self._doc(key).get("data") is None:
            return self.revision(key)
        return self.put(key, None, None)

    def forget_job(self, job_id: str) -> None:
        """A deleted job: its limits, its last test and every draft of it go."""
        if not valid_key(job_id):
            return
        for path in self.folder.glob("*.json"):
            doc = self._read(path) if path.name.startswith("job-") else {}  # a draft of it
            if path.stem in (job_id, f"{job_id}.test") or doc.get("job_id") == job_id:
                path.unlink(missing_ok=True)

    def limits(self, key: str) -> dict | None:
        return self._doc(key).get("limits")

    def put_limits(self, key: str, limits: dict) -> None:
        self._set(key, limits=dict(limits))

    def get_test(self, key: str) -> dict | None:
        if not valid_key(key):
            return None
        return self._read(self._path(key, "test.json")) or None

    def put_test(self, key: str, test: dict) -> bool:
        """Keep the last test; False when it is too large to keep (it stays in the session)."""
        text = json.dumps(test, ensure_ascii=False, default=str)
        if len(text) > MAX_TEST_BYTES or not valid_key(key):
            return False
        self._write(self._path(key, "test.json"), text)
        return True

    def move(self, old: str, new: str) -> None:
        """A new job was saved: its limits and last test follow it to the job's id."""
        if not (valid_key(old) and valid_key(new)):
            return
        limits = self.limits(old)
        with contextlib.suppress(FileNotFoundError):
            self._path(old).unlink()
        if limits:
            self.put_limits(new, limits)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self._path(old, "test.json"), self._path(new, "test.json"))
