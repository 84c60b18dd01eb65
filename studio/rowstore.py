"""The imported rows: SQLite in WAL mode, one table per entity, upsert by the entity's key.

WAL lets the studio read while the runner writes, from another process. Rows are written in a
transaction that the caller commits at the end of a run (or of a file, in bulk mode), so a run
that fails changes nothing. Each row remembers the run that last wrote it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

from studio.entities import Entity, load_entities
from studio.private import private_dir, private_file
from studio.rowsql import BOOKKEEPING, SEQ, drop_keyed_otherwise, on_update, quote, table_name

DB_FILE = "entities.sqlite"
_SQL_TYPES = {"integer": "INTEGER", "number": "REAL", "boolean": "INTEGER"}
# Rows staged by one statement (``INSERT … VALUES (…), (…)``), within SQLite's limit of
# parameters (32,766 since SQLite 3.32, 999 before).
_ROWS_PER_INSERT = 100
# What binding a value can raise before a statement runs: the rows are then staged one by one,
# which raises what it always has (the statement inserted nothing).
_BINDING_ERRORS = (sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError, ValueError)


def staging_path(home: Path, run_id: str) -> Path:
    """The private scratch file where a run stages its rows until they are committed."""
    return home / "runs" / f".{run_id}.staging.sqlite"


def connect(home: Path) -> sqlite3.Connection:
    """The store, its file (and so its -wal and -shm) 0600 in a 0700 home."""
    path = private_file(private_dir(home) / DB_FILE)
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _columns(db: sqlite3.Connection, table: str) -> dict[str, int]:
    """A table's columns in the store (``main``, not a stage attached beside it) and where
    each stands in its primary key (0: not in it); empty when there is no such table."""
    return {row[1]: row[5] for row in db.execute(f"PRAGMA main.table_info({table})")}


def ensure_table(db: sqlite3.Connection, entity: Entity) -> None:
    """Create the entity's table, and add columns for fields added to the catalog since.

    A table whose primary key is not the entity's key (the entity was re-keyed, or deleted and
    made again under the same name with another key) is made again when it holds no rows; one
    that holds rows is refused, since its rows were keyed by another field."""
    table = quote(table_name(entity))
    have = _columns(db, table)
    key = [name for name, at in sorted(have.items(), key=lambda c: c[1]) if at]
    if have and key == [entity.key] and all(n in have for n in entity.fields):
        return  # as it should be: nothing to write, no lock to take
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")  # the check and the change as one
        try:
            ensure_table(db, entity)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return
    if have and drop_keyed_otherwise(db, f"main.{table}", entity, key):
        have = {}
    if not have:
        columns = [f"{quote(n)} {_SQL_TYPES.get(f.type, 'TEXT')}" for n, f in entity.fields.items()]
        db.execute(
            f"CREATE TABLE main.{table} ({', '.join(columns)}, "
            f"_run_id TEXT, _updated_at TEXT, PRIMARY KEY ({quote(entity.key)}))"
        )
        return
    for name, f in entity.fields.items():
        if name not in have:
            db.execute(
                f"ALTER TABLE main.{table} ADD COLUMN {quote(name)} "
                f"{_SQL_TYPES.get(f.type, 'TEXT')}"
            )


class EntityWriter:
    """Upserts rows of one entity as one unit of work: ``commit`` or ``rollback`` it.

    Rows are first staged in a private SQLite file (no journal, no fsync: it is scratch); the
    commit copies them into the shared store in one short transaction. So the store's single
    write lock is held for the copy, not for the whole run and its HTTP calls, and the runner's
    workers (and the REST API) can run jobs side by side.

    Only the ``columns`` a job maps are written: a row imported by another job keeps the fields
    this one does not map. Rows must hold exactly those columns, in that order (as the mapper
    makes them), which lets a row become its SQL parameters without a lookup per field.

    The ``immutable`` columns (``Mapper.immutable_fields``) are written when a row is inserted,
    and when it exists are filled only where they are NULL: the upsert updates the other
    columns, and a row whose mapped columns are all immutable and set is not touched at all
    (not even the run that last wrote it, since no run changed it).

    The rows are copied in the order they were written, so of two rows with the same key the
    last one wins."""

    def __init__(
        self,
        home: Path,
        entity: Entity,
        run_id: str,
        columns: list[str] | None = None,
        staging: Path | None = None,
        immutable: Iterable[str] = (),
    ):
        self.home, self.entity, self.run_id = home, entity, run_id
        fields = list(columns or entity.fields)
        if entity.key not in fields:
            raise ValueError(f"the key field {entity.key!r} must be written")
        all_fields = [*fields, *BOOKKEEPING]
        names = ", ".join(quote(n) for n in all_fields)
        table = quote(table_name(entity))
        # "WHERE true" lets SQLite tell the upsert clause from a join (its documented quirk).
        # ``{stage}``: the name the stage is attached under for the commit.
        self._copy = (
            f"INSERT INTO main.{table} AS target ({names}) SELECT {names} FROM {{stage}}.rows "
            f"WHERE true ORDER BY {{stage}}.rows.{SEQ} "
            f"ON CONFLICT({quote(entity.key)}) {on_update(fields, entity.key, immutable)}"
        )
        self._stage_path = staging or staging_path(home, run_id)
        private_dir(self._stage_path.parent)
        self._stage_path.unlink(missing_ok=True)
        self.stage = sqlite3.connect(private_file(self._stage_path), isolation_level=None)
        self.stage.execute("PRAGMA journal_mode=OFF")
        self.stage.execute("PRAGMA synchronous=OFF")
        self.stage.execute(f"CREATE TABLE rows ({SEQ} INTEGER PRIMARY KEY, {names})")
        marks = ", ".join("?" for _ in all_fields)
        self._insert = f"INSERT INTO rows ({names}) VALUES ({marks})"
        self._names, self._width = names, len(fields)
        limit = self.stage.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._per_insert = min(_ROWS_PER_INSERT, (limit - 2) // len(fields))
        self._inserts: dict[int, str] = {}
        self.stage.execute("BEGIN")
        self.written = 0

    def write(self, rows: list[dict], rejects=()) -> None:
        """Stage rows, 100 to a statement: an ``executemany`` binds and steps each row on its
        own, which cost twice as much. A chunk whose values SQLite does not take (or a row
        of another width) is staged row by row instead, which says what is wrong as it
        always has."""
        if not rows:
            return
        tail = (self.run_id, datetime.now(UTC).isoformat(timespec="seconds"))
        step, width = max(1, self._per_insert), self._width
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            if self._per_insert > 1 and all(len(r) == width for r in chunk):
                values = list(chain.from_iterable(r.values() for r in chunk))
                values += tail
                try:
                    self.stage.execute(self._insert_of(len(chunk)), values)
                    continue
                except _BINDING_ERRORS:
                    pass
            self.stage.executemany(self._insert, [(*r.values(), *tail) for r in chunk])
        self.written += len(rows)

    def _insert_of(self, count: int) -> str:
        """The statement staging ``count`` rows: their values, then the run and the time
        (``?N``, bound once for all of them)."""
        if count not in self._inserts:
            w = self._width
            run, at = count * w + 1, count * w + 2
            rows = (
                "(" + ", ".join(f"?{i * w + j + 1}" for j in range(w)) + f", ?{run}, ?{at})"
                for i in range(count)
            )
            self._inserts[count] = f"INSERT INTO rows ({self._names}) VALUES {', '.join(rows)}"
        return self._inserts[count]

    def commit(self) -> None:
        """Copy the staged rows into the store, in one transaction, and empty the stage."""
        commit_together(self.home, [self])

    def rollback(self) -> None:
        """Drop the staged rows (whether the stage's transaction is open or a failed commit
        left them committed in the stage)."""
        if self.stage.in_transaction:
            self.stage.execute("ROLLBACK")
        self.stage.execute("DELETE FROM rows")
        self.stage.execute("BEGIN")

    def close(self) -> None:
        self.stage.close()
        self._stage_path.unlink(missing_ok=True)


def commit_together(home: Path, writers: list[EntityWriter]) -> None:
    """Copy the staged rows of several writers (a job's entity and its children's) into the
    store in one ``BEGIN IMMEDIATE … COMMIT``: readers see all of them or none. Each stage is
    attached under its own name; the stages are emptied once the copy is committed.

    A copy that fails (a constraint, a busy store, a table keyed otherwise) changes nothing:
    the error propagates, and each stage is back in a transaction with its rows, for the
    caller's ``rollback`` to drop."""
    for w in writers:
        if w.stage.in_transaction:
            w.stage.execute("COMMIT")  # so that the store's connection can read the stage
    try:
        db = connect(home)
        try:
            for n, w in enumerate(writers):
                db.execute(f"ATTACH DATABASE ? AS staging{n}", (str(w._stage_path),))
            db.execute("BEGIN IMMEDIATE")
            try:
                for w in writers:
                    ensure_table(db, w.entity)
                for n, w in enumerate(writers):
                    db.execute(w._copy.format(stage=f"staging{n}"))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            for n in range(len(writers)):
                db.execute(f"DETACH DATABASE staging{n}")
        finally:
            db.close()
    except BaseException:
        for w in writers:
            if not w.stage.in_transaction:
                w.stage.execute("BEGIN")
        raise
    for w in writers:
        w.stage.execute("DELETE FROM rows")
        w.stage.execute("BEGIN")


class WriterGroup:
    """Writers of several entities as one unit of work: ``commit`` makes all their rows
    visible in one transaction, ``rollback`` drops all of them."""

    def __init__(self, home: Path, writers: list[EntityWriter]):
        self.home, self.writers = home, writers

    def commit(self) -> None:
        commit_together(self.home, self.writers)

    def rollback(self) -> None:
        for w in self.writers:
            w.rollback()

    def close(self) -> None:
        for w in self.writers:
            w.close()


def read_rows(
    home: Path, entity_name: str, *, limit: int = 100, offset: int = 0, where: str = ""
) -> tuple[list[dict], int]:
    """A page of an entity's rows (newest first) and their total; ``where`` filters any column
    by substring. For the Data page and the CLI."""
    entity = load_entities(home)[entity_name]
    db = connect(home)
    try:
        ensure_table(db, entity)
        table = quote(table_name(entity))
        columns = [*entity.fields, *BOOKKEEPING]
        clause, args = "", []
        if where:
            clause = "WHERE " + " OR ".join(f"CAST({quote(c)} AS TEXT) LIKE ?" for c in columns)
            args = [f"%{where}%"] * len(columns)
        total = db.execute(f"SELECT COUNT(*) FROM {table} {clause}", args).fetchone()[0]
        cursor = db.execute(
            f"SELECT * FROM {table} {clause} ORDER BY _updated_at DESC, "
            f"rowid DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor], total
    finally:
        db.close()


def count_rows(home: Path, entity_name: str, column: str | None = None) -> int:
    """How many rows an entity holds (with a value in ``column``, when given); 0 for an entity
    (or a column) never written. What stands in the way of changing an entity."""
    db = connect(home)
    try:
        table = table_name(entity_name)
        have = {row[1] for row in db.execute(f"PRAGMA table_info({quote(table)})")}
        if not have or (column is not None and column not in have):
            return 0
        where = f"WHERE {quote(column)} IS NOT NULL" if column else ""
        return db.execute(f"SELECT COUNT(*) FROM {quote(table)} {where}").fetchone()[0]
    finally:
        db.close()


class SqliteRows:
    """The imported rows in ``STUDIO_HOME/entities.sqlite`` (``stores.RowStore``)."""

    def __init__(self, home: Path):
        self.home = home

    def writer(
        self,
        entity: Entity,
        run_id: str,
        columns: list[str],
        *,
        immutable: Iterable[str] = (),
        part: str = "",
    ) -> EntityWriter:
        staging = staging_path(self.home, f"{run_id}.{table_name(part)}") if part else None
        return EntityWriter(
            self.home, entity, run_id, columns, staging=staging, immutable=immutable
        )

    def together(self, writers: list[EntityWriter]) -> WriterGroup:
        return WriterGroup(self.home, writers)

    def read(
        self, entity_name: str, *, limit: int = 100, offset: int = 0, where: str = ""
    ) -> tuple[list[dict], int]:
        return read_rows(self.home, entity_name, limit=limit, offset=offset, where=where)

    def count(self, entity_name: str, column: str | None = None) -> int:
        return count_rows(self.home, entity_name, column)
