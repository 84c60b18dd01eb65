"""The two stores a run writes to, as interfaces: the imported rows and the run history.

The engine, the pages, the CLI and the REST API reach them only through ``open_rows`` and
``open_history``, so that another implementation (PostgreSQL, for runners on several machines)
can be added here without touching them. By default both are SQLite files in ``STUDIO_HOME``
(``rowstore.SqliteRows``, ``runhistory.RunHistory``); with ``STUDIO_DATABASE_URL`` set to a
``postgresql://`` URL, both are in that database (``pgrows.PgRows``, ``pghistory.PgHistory``),
and so are the runs' files once they end (``pgfiles``), for runners on several machines.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from studio.entities import Entity
from studio.historybase import Progress, Run


class RowWriter(Protocol):
    """One unit of work of a run: rows are visible to readers only once it commits."""

    def write(self, rows: list[dict], rejects: Iterable = ()) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class RowGroup(Protocol):
    """Several writers committed (or rolled back) as one."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class RowStore(Protocol):
    """The imported rows: one table per entity, upserted by the entity's key."""

    def writer(
        self,
        entity: Entity,
        run_id: str,
        columns: list[str],
        *,
        immutable: Iterable[str] = (),
        part: str = "",
    ) -> RowWriter:
        """A unit of work writing ``columns``; the ``immutable`` ones are set when a row is
        created and kept as they are when it is updated. ``part``: a name that sets this
        writer apart from the run's other writers (a child entity's)."""
        ...

    def together(self, writers: list[RowWriter]) -> RowGroup:
        """Writers of several entities (a job's and its children's, made by ``writer``) as
        one unit of work: their rows become visible in one transaction, or not at all."""
        ...

    def read(
        self, entity_name: str, *, limit: int = 100, offset: int = 0, where: str = ""
    ) -> tuple[list[dict], int]: ...

    def count(self, entity_name: str, column: str | None = None) -> int:
        """Rows of an entity (with a value in ``column``): what a change of the entity meets."""
        ...


class RunStore(Protocol):
    """The run history, and the claims that keep a job (and a slot) from running twice."""

    def start(self, job_id: str, job_name: str, trigger: str, slot: str = "", **kw) -> Run: ...

    def start_run(self, job_id: str, job_name: str, trigger: str, **kw) -> Run: ...

    def save(self, run: Run, *, if_running: bool = False) -> bool:
        """Record ``run``; ``if_running``: only while its record is ``running`` (a run's end,
        which must not overwrite an interruption recorded meanwhile). Whether recorded."""
        ...

    def save_counts(self, run_id: str, counts: dict[str, int]) -> Progress:
        """A running run's counts so far: saved, skipped (the history busy), or the run is no
        longer running (``Progress.ENDED``: it must stop)."""
        ...

    def end_if_queued(self, run_id: str, status: str, reason: str) -> bool: ...

    def end_if_held(self, run_id: str, status: str, reason: str) -> bool: ...

    def get(self, run_id: str) -> Run | None: ...

    def find(self, ref: str) -> Run: ...

    def list(
        self, job_id: str | None = None, status: str | None = None, limit: int = 200
    ) -> list[Run]: ...

    def last_success(self, job_id: str) -> str: ...

    def mark_interrupted(
        self, reason: str, *, only_mine: bool = False, others: bool = False
    ) -> int: ...

    def purge(self, days: int) -> int: ...


def open_rows(home: Path) -> RowStore:
    from studio.pg import database_url

    if database_url():  # or a StudioError naming the variable
        from studio.pgrows import PgRows

        return PgRows(home)
    from studio.rowstore import SqliteRows

    return SqliteRows(home)


def open_history(home: Path) -> RunStore:
    from studio.pg import database_url

    if database_url():
        from studio.pghistory import PgHistory

        return PgHistory(home)
    from studio.runhistory import RunHistory

    return RunHistory(home)
