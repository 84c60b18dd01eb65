"""The imported rows (studio/rowstore.py): each run stages its rows and copies them in with one
short transaction."""

from __future__ import annotations

from studio.rowstore import read_rows


def test_runs_side_by_side_do_not_lock_each_other_out(store):
    """Each run stages its rows; the store's write lock is taken only to copy them in."""
    from studio.entities import entity
    from studio.rowstore import EntityWriter

    spec = entity("Suppliers")
    first = EntityWriter(store.home, spec, "run-1", ["external_id", "name"])
    second = EntityWriter(store.home, spec, "run-2", ["external_id", "name"])
    first.write([{"external_id": "A", "name": "from run 1"}])
    second.write([{"external_id": "B", "name": "from run 2"}])
    second.commit()  # while the first run is still going
    first.write([{"external_id": "C", "name": "from run 1"}])
    first.rollback()
    first.write([{"external_id": "D", "name": "from run 1"}])
    first.commit()
    for w in (first, second):
        w.close()
    rows, total = read_rows(store.home, "Suppliers")
    assert total == 2 and {r["external_id"]: r["_run_id"] for r in rows} == {
        "B": "run-2",
        "D": "run-1",
    }
