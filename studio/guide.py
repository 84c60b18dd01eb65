"""What the studio suggests from the configs and the run history: the first steps a new user
still has to take (the Overview's onboarding), and the entity the Data page opens on.

Pure decisions over what the stores hold, kept out of the pages so that they are tested without
Streamlit. The demo configs (``configs/examples``, loaded into a new store by ``runner up``) are
there to try things, so they do not count as the user's own connection or job: a new user with
only the demo still sees what to do first.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from studio.config.files import EXAMPLES
from studio.runhistory import Run


@dataclass(frozen=True)
class Step:
    key: str  # "connect", "build", "schedule": the page decides where each one leads
    title: str
    hint: str
    done: bool


@functools.cache
def demo_ids() -> frozenset[str]:
    """The ids of the demo configs, which keep their ids when loaded into a store."""
    ids = set()
    for path in EXAMPLES.glob("*/*.json"):
        try:
            ids.add(json.loads(path.read_text("utf-8")).get("id"))
        except (OSError, ValueError):
            continue
    return frozenset(i for i in ids if i)


def own(configs: Iterable) -> list:
    """The configs the user made: not the demo's."""
    return [c for c in configs if c.id not in demo_ids()]


def first_steps(connections: list, jobs: list, runs: list[Run]) -> list[Step]:
    """The onboarding: connect, build a job, schedule it, each ticked once done; empty (no
    onboarding) once one of the user's own jobs exists and has run."""
    connections, jobs = own(connections), own(jobs)
    ids = {j.id for j in jobs}
    if any(r.job_id in ids for r in runs):
        return []
    return [
        Step(
            "connect",
            "Connect",
            "Add a connection to your API or file server, and test it.",
            bool(connections),
        ),
        Step(
            "build",
            "Build an import job",
            "Pick the calls or files, find the records, map them to an entity's fields.",
            bool(jobs),
        ),
        Step(
            "schedule",
            "Schedule it",
            "Give the job a schedule (or run it now, from its editor or the Runs page).",
            any(j.schedule.type != "manual" for j in jobs),
        ),
    ]


def opening_entity(
    entities: list[str], jobs: list, runs: list[Run], count: Callable[[str], int]
) -> str:
    """The entity the Data page opens on: the one the latest successful (or partial) run
    imported into, else the first entity holding rows (``count(entity)``), else the first."""
    entity_of = {j.id: j.entity for j in jobs}
    for run in runs:  # latest first
        if run.status in ("success", "partial") and entity_of.get(run.job_id) in entities:
            return entity_of[run.job_id]
    return next((e for e in entities if count(e)), entities[0])
