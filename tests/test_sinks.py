"""The run's files (rows.csv and the destination's raw rows) hold, byte for byte, what the csv
module writes: the batch written in one go (issue 17) is checked against it, whichever path a
batch takes, and a rolled-back unit leaves no trace."""

from __future__ import annotations

import csv
import io
import random

import pytest

from studio.destination import for_people
from studio.entities import Entity
from studio.sinks import _FORMULA_START, RunOutputs, _plain_csv_text
from tests.helpers import assert_private

COLUMNS = ["id", "name", "code", "description", "updated_at"]
ENTITY = Entity(name="Things", key="id", fields={c: {"type": "string"} for c in COLUMNS})
DESCRIPTION = "A sturdy product, with a long enough description to be realistic."
PIECES = ["a", "b c", ",", '"', "\r", "\n", "\r\n", "\x00", "", " ", "=", "+", "-", "@", "\t"]
PIECES += ["é", "😀", "%s", "%", "x,y", "1", "'"]


def reference(rows: list[dict]) -> tuple[str, str]:
    """What the run's files got before issue 17: the batch by ``csv.writer``, and for people,
    when any value starts as a formula, each value through ``for_people``."""
    raw, people = io.StringIO(), io.StringIO()
    csv.writer(raw).writerows(r.values() for r in rows)
    formula = any(type(v) is str and v[:1] in _FORMULA_START for r in rows for v in r.values())
    csv.writer(people).writerows(for_people(r.values()) if formula else r.values() for r in rows)
    return raw.getvalue(), people.getvalue()


def awkward(rnd: random.Random, n: int) -> object:
    kind = rnd.random()
    if kind < 0.04:
        return None
    if kind < 0.07:
        return rnd.choice([1, 2.5, True, -3, 10**15, float("inf")])
    return f"{n}" + "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 4)))


def batches(seed: int, count: int) -> list[list[dict]]:
    """Batches as a run's are: plain ones (the fast path: some with a comma in every value of
    a column, some in a few), and awkward ones (quotes, line ends, NUL, formulas, numbers)."""
    rnd, n, out = random.Random(seed), 0, []
    for b in range(count):
        rows = []
        for _ in range(rnd.randint(1, 30)):
            n += 1
            if b % 3 == 0:
                values = [awkward(rnd, n) for _ in COLUMNS]
            else:
                code = rnd.choice(["cat-1", "a,b", "x y", "", "é,"]) if b % 3 == 2 else "cat-1"
                values = [f"P{n:07d}", f"Product {n}", code, DESCRIPTION, "2026-05-17T08:00:00"]
            values[0] = f"k{n}" + str(values[0])  # a unique text key
            rows.append(dict(zip(COLUMNS, values, strict=True)))
        out.append(rows)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_a_batch_written_in_one_go_is_what_csv_writes(seed):
    fast = 0
    for rows in batches(seed, 300):
        raw, people = reference(rows)
        text = _plain_csv_text(rows, len(COLUMNS))
        if text is not None:
            fast += 1
            assert text == raw == people
    assert fast >= 150  # the plain batches took the fast path


@pytest.mark.parametrize(
    "rows",
    [
        [{"a": ""}],  # one column: csv quotes an empty row
        [{"a": "x", "b": "y"}, {"a": "x"}],  # a row of another width
        [{"a": "x\x00y", "b": "z"}],
        [{"a": "-1", "b": "z"}],  # a formula start, even as a number
        [{"a": "z", "b": None}],
        [{"a": "z", "b": 1.5}],
    ],
)
def test_what_the_fast_path_leaves_to_csv(rows):
    assert _plain_csv_text(rows, len(rows[0])) is None


def test_run_files_hold_the_committed_batches_as_csv_writes_them(home, tmp_path, umask_022):
    """Three units of work (as bulk files): the first committed (its pending file becomes
    rows.csv), the second rolled back, the third committed (copied after the first)."""
    folder, raw_path = tmp_path / "run", tmp_path / "raw.csv"
    out = RunOutputs(home, folder, ENTITY, "run1", COLUMNS, raw=raw_path)
    header = ",".join(COLUMNS) + "\r\n"
    want_raw, want_people = [header], [header]
    for unit, chunk in enumerate([batches(7, 40), batches(8, 40), batches(9, 40)]):
        for rows in chunk:
            out.write(rows, [])
        if unit == 1:
            out.rollback()  # a failed bulk file: none of its rows in the files
            continue
        out.commit()
        for rows in chunk:
            raw, people = reference(rows)
            want_raw.append(raw)
            want_people.append(people)
    out.close()
    assert raw_path.read_bytes() == "".join(want_raw).encode()
    assert (folder / "rows.csv").read_bytes() == "".join(want_people).encode()
    assert sorted(p.name for p in folder.iterdir()) == ["rejects.csv", "rows.csv"]
    assert_private(folder)


def test_a_run_that_commits_nothing_leaves_the_header_alone(home, tmp_path):
    folder = tmp_path / "run"
    out = RunOutputs(home, folder, ENTITY, "run1", COLUMNS)
    out.write(batches(3, 2)[1], [])
    out.rollback()
    out.close()
    assert (folder / "rows.csv").read_bytes() == (",".join(COLUMNS) + "\r\n").encode()
    assert sorted(p.name for p in folder.iterdir()) == ["rejects.csv", "rows.csv"]
