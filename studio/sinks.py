"""Where a run's rows go: the entity store (staged, committed per unit of work), the run's
files for people (rows.csv and rejects.csv, formulas neutralised), and the job's CSV
destination on a file server, written from the committed rows as they came."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import chain, repeat
from operator import contains
from pathlib import Path
from typing import TextIO

from studio.config.jobs import ApiJob, FileJob
from studio.config.store import ConfigStore
from studio.destination import CsvFile, for_people
from studio.entities import Entity, entity
from studio.files import connect
from studio.mapping import Reject
from studio.private import open_private, private_dir
from studio.runhistory import Run
from studio.stores import open_rows

# The first characters of a cell a spreadsheet may run as a formula: a batch with none of them
# (most batches) is written as it is; one with any goes through ``for_people`` value by value.
# Looking at the values is faster than a regular expression over the batch's CSV text.
_FORMULA_START = frozenset("=+-@\t\r")


# What makes ``csv`` quote a field (QUOTE_MINIMAL, the excel dialect).
_SPECIAL = ',"\r\n'


def _maybe_formula(rows: list[dict]) -> bool:
    return any(type(v) is str and v[:1] in _FORMULA_START for r in rows for v in r.values())


def _csv_text(rows: Iterable[Iterable]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _csv_field(value: str) -> str:
    """A text as ``csv`` writes it: quoted (its quotes doubled) when it holds what needs it."""
    if any(c in value for c in _SPECIAL):
        return '"' + value.replace('"', '""') + '"'
    return value


def _plain_csv_text(rows: list[dict], width: int) -> str | None:
    """The batch's CSV text, the same as ``_csv_text`` writes, when every row holds ``width``
    texts and none starts as a formula (most batches); None otherwise, for ``_csv_text``.

    ``csv`` looks at every character of every value, twice, in a loop of its own (0.35 s for
    200,000 rows of 5 fields); here each column is joined into one text (NUL between values),
    where ``str``'s searches (memchr) tell whether any value of it starts as a formula or
    needs quotes, and the rows are filled into one ``%`` template: a column whose every value
    needs quotes (such as descriptions with a comma) is quoted by the template, one where only
    some do is quoted value by value. A NUL in a value, a value that is not text (None, a
    number) or a row of another width leaves the batch to ``csv``."""
    count = len(rows)
    if width < 2 or not count or set(map(len, rows)) != {width}:
        return None  # a one-column row of an empty text is written as "" by csv
    values = list(chain.from_iterable(map(dict.values, rows)))
    template = []
    for j in range(width):
        column = values[j::width]
        try:
            joined = "\x00".join(column)
        except TypeError:
            return None  # not all text
        if joined.count("\x00") != count - 1:
            return None
        if any(c in joined and (joined[0] == c or "\x00" + c in joined) for c in _FORMULA_START):
            return None  # a formula: for people, value by value
        special = [c for c in _SPECIAL if c in joined]
        if not special:
            template.append("%s")
        elif '"' not in special and all(map(contains, column, repeat(special[0]))):
            template.append('"%s"')  # each value needs quotes, none holds one: quote them all
        else:
            values[j::width] = map(_csv_field, column)
            template.append("%s")
    return ((",".join(template) + "\r\n") * count) % tuple(values)


class _PendingCsv:
    """A CSV file whose rows of the unit of work wait in a write-only file beside it until
    ``commit`` appends them (a read-write text file costs a codec reset per write).

    The pending file starts with the header too: the first commit (an API job's only one) puts
    it in the place of the file, which holds the header alone until then, instead of copying
    its rows; later commits (bulk files) copy the rows after its header."""

    def __init__(self, path: Path, header: list[str]):
        self.path, self._pending_path = path, path.with_name(f".{path.name}.pending")
        self._header = _csv_text([header])
        self._file = open_private(path, newline="")
        self._file.write(self._header)
        self._committed = False  # the file holds its header alone
        self._pending = self._open_pending()

    def _open_pending(self) -> TextIO:
        pending = open_private(self._pending_path, newline="")
        pending.write(self._header)
        return pending

    def write(self, text: str) -> None:
        self._pending.write(text)

    def commit(self) -> None:
        self._pending.close()
        if not self._committed:
            self._file.close()
            os.replace(self._pending_path, self.path)
            self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
            self._committed = True
        else:
            with open(self._pending_path, newline="", encoding="utf-8") as pending:
                pending.read(len(self._header))
                shutil.copyfileobj(pending, self._file)
        self._pending = self._open_pending()

    def rollback(self) -> None:
        self._pending.close()
        self._pending = self._open_pending()

    def close(self) -> None:
        self._file.close()
        self._pending.close()
        self._pending_path.unlink(missing_ok=True)


class RunOutputs:
    """Where a run's rows go: the entity store (one transaction), and the run's files:
    ``rows.csv`` and ``rejects.csv`` (record, field, reason). Rows wait in a pending file until
    the unit of work (the run, or a bulk file) commits, so a rolled-back file leaves no trace.

    The run's files are for people, who open them in a spreadsheet: a value that would run as
    a formula is written with a quote before it, as the CSV destination writes it. The entity
    store keeps the values as they are, and so does ``raw`` (when given): the committed rows
    unquoted, from which the job's destination writes its file with its own options.

    It counts what it was given: rows, rejects, and the records a ``discard_if_empty`` field
    dropped (``discarded``: neither rows nor rejects, so counted apart). ``immutable``: the
    columns the entity store keeps on update (``Mapper.immutable_fields``).

    ``children``: a job's child entities, as (entity, columns, immutable columns); their rows
    go to the entity store only (not to the run's files), committed in the same transaction
    as the parent rows, and are counted apart (``child_rows``). ``before_commit``: called as
    each unit of work commits; what it raises stops the commit."""

    def __init__(
        self,
        home: Path,
        folder: Path,
        entity: Entity,
        run_id: str,
        columns: list[str],
        raw: Path | None = None,
        immutable: Iterable[str] = (),
        children: Iterable[tuple[Entity, list[str], list[str]]] = (),
        before_commit: Callable[[], None] = lambda: None,
    ):
        private_dir(folder)
        self.before_commit = before_commit
        self.folder = folder
        self.fields, self._width = columns, len(columns)
        store = open_rows(home)
        self.writer = store.writer(entity, run_id, columns, immutable=immutable)
        self.children = {
            child.name: store.writer(child, run_id, cols, immutable=keep, part=child.name)
            for child, cols, keep in children
        }
        # One unit of work for the entity and its children; the writer itself when alone.
        self.unit = (
            store.together([self.writer, *self.children.values()]) if self.children else self.writer
        )
        self.rows_path, self.rejects_path = folder / "rows.csv", folder / "rejects.csv"
        self._rows = _PendingCsv(self.rows_path, columns)
        self._raw = _PendingCsv(raw, columns) if raw else None
        self._rejects = open_private(self.rejects_path, newline="")
        csv.writer(self._rejects).writerow(["record", "field", "reason"])
        self.rows = self.rejects = self.discarded = self.child_rows = 0

    def write(
        self,
        rows: list[dict],
        rejects: list[Reject],
        discarded: int = 0,
        children: dict[str, list[dict]] | None = None,
    ) -> None:
        self.writer.write(rows)
        for name, child_rows in (children or {}).items():
            self.children[name].write(child_rows)
            self.child_rows += len(child_rows)
        text = _plain_csv_text(rows, self._width)
        if text is None:  # a formula, a value that is not text, a NUL: the csv module
            text = _csv_text(r.values() for r in rows)
            if self._raw:
                self._raw.write(text)
            if _maybe_formula(rows):  # rarely: most batches are written as they are
                text = _csv_text(for_people(r.values()) for r in rows)
        elif self._raw:
            self._raw.write(text)
        self._rows.write(text)
        csv.writer(self._rejects).writerows(
            for_people([r.record, r.field, r.reason]) for r in rejects
        )
        self.rows += len(rows)
        self.rejects += len(rejects)
        self.discarded += discarded

    def _files(self) -> list[_PendingCsv]:
        return [self._rows, *([self._raw] if self._raw else [])]

    def commit(self) -> None:
        """Commit the unit of work, once ``before_commit`` has not raised (the run checks
        there that it still runs, so that a run interrupted meanwhile commits nothing)."""
        self.before_commit()
        self.unit.commit()
        for f in self._files():
            f.commit()

    def rollback(self) -> None:
        self.unit.rollback()
        for f in self._files():
            f.rollback()

    def close(self) -> list[str]:
        self.unit.close()
        for f in self._files():
            f.close()
        self._rejects.close()
        return [str(self.rows_path), str(self.rejects_path)]


def deliver(store: ConfigStore, job: ApiJob | FileJob, run: Run, rows_csv: Path) -> str:
    """Write the committed rows (as they are, not quoted for people) as the job's destination
    CSV file; returns where."""
    dest = job.destination
    conn = store.get("connections", dest.connection_id, reveal=True)
    out = CsvFile(dest, list(entity(job.entity).fields))
    try:
        with open(rows_csv, newline="", encoding="utf-8") as f:
            out.write(csv.DictReader(f))
        with connect(conn, store.home) as client:
            target = out.deliver(client, job=job.name, run_id=run.id, now=datetime.now(UTC))
    finally:
        out.discard()
    return f"{conn.name}:{target}"
