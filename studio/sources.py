"""Sources of a run, in one shape: units of work that yield mapped batches.

An API job is one unit (its call chain's records: a failure fails the run); a file job is one
unit per file (a failure rolls back that file only, moves it to the error folder when there is
one, and the run goes on). ``run_units`` is the one loop that sends any unit's batches to the
sink, commits or rolls back each unit, and tells it how it ended, so that runs, the REST API's
push and the tests share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from studio.errors import StudioError
from studio.mapping import MappedBatch, Reject

Event = dict[str, Any]


class Sink(Protocol):
    """Where mapped rows go, one unit of work at a time (``sinks.RunOutputs`` in a run)."""

    def write(
        self,
        rows: list[dict],
        rejects: list[Reject],
        discarded: int = 0,
        children: dict[str, list[dict]] | None = None,
    ) -> None:
        """``discarded``: how many records of the batch a ``discard_if_empty`` field dropped;
        ``children``: the rows of the job's child entities, by entity (``studio.children``)."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class Unit(Protocol):
    name: str
    isolated: bool  # its failure fails only it: rolled back, reported, and the run goes on

    def batches(self) -> Iterator[tuple[int, MappedBatch]]:
        """(records read, their rows and rejects), batch after batch."""
        ...

    def done(self) -> str:
        """Committed: what happens to it now ("moved to …"), or ""."""
        ...

    def failed(self, error: str) -> str:
        """Rolled back: what happens to it now, or ""."""
        ...


@dataclass
class UnitResult:
    path: str  # the unit's name: a file's path, or "calls"
    records: int = 0
    rows: int = 0
    rejects: int = 0
    discarded: int = 0
    error: str = ""
    moved_to: str = ""


def run_units(
    units: Iterable[Unit],
    sink: Sink,
    *,
    on_event: Callable[[Event], None] = lambda _e: None,
    on_batch: Callable[[int], None] = lambda _n: None,
    on_unit: Callable[[UnitResult], None] = lambda _r: None,
) -> list[UnitResult]:
    """Send every unit's batches to ``sink``; ``on_batch(records)`` after each batch,
    ``on_unit(result)`` after each unit."""
    results = []
    for unit in units:
        result = UnitResult(unit.name)
        results.append(result)
        try:
            for count, mapped in unit.batches():
                result.records += count
                result.rows += len(mapped.rows)
                result.rejects += len(mapped.rejects)
                result.discarded += len(mapped.discarded)
                if mapped.children:
                    sink.write(mapped.rows, mapped.rejects, len(mapped.discarded), mapped.children)
                else:  # most jobs: and sinks written before children need not know them
                    sink.write(mapped.rows, mapped.rejects, len(mapped.discarded))
                on_batch(count)
            sink.commit()
        except StudioError as e:
            if not unit.isolated:
                raise  # the run fails; whoever runs it rolls back
            sink.rollback()
            result.error = str(e)
            on_event({"kind": "log", "message": f"{unit.name}: failed: {e}"})
            result.moved_to = unit.failed(str(e))
        else:
            result.moved_to = unit.done()
        on_unit(result)
    return results


class ChainUnit:
    """An API job's records: its call chain's batches, mapped."""

    name, isolated = "calls", False

    def __init__(self, chain, mapper):
        """``mapper``: the job's (``children.job_mapper``), with or without children."""
        self.chain, self.mapper = chain, mapper

    def batches(self) -> Iterator[tuple[int, MappedBatch]]:
        start = 0
        for batch in self.chain.batches():
            yield len(batch), self.mapper.map(batch, start=start)
            start += len(batch)

    def done(self) -> str:
        return ""

    def failed(self, error: str) -> str:
        return ""
