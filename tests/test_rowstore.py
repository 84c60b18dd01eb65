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


def test_immutable_columns_are_written_on_insert_and_kept_on_update(store):
    """An upsert sets a new row's immutable columns and leaves an existing row's as they are;
    when every column but the key is immutable, an existing row is not touched at all."""
    from studio.entities import entity
    from studio.stores import open_rows

    def run(run_id: str, rows: list[dict], immutable: list[str]) -> dict[str, dict]:
        writer = open_rows(store.home).writer(
            entity("Suppliers"), run_id, list(rows[0]), immutable=immutable
        )
        writer.write(rows)
        writer.commit()
        writer.close()
        return {r["external_id"]: r for r in read_rows(store.home, "Suppliers")[0]}

    first = {"external_id": "A", "name": "Acme", "email": "first@acme.example"}
    run("run-1", [first], ["email"])
    changed = {"external_id": "A", "name": "Acme Ltd", "email": "second@acme.example"}
    new = {"external_id": "B", "name": "Globex", "email": "b@globex.example"}
    rows = run("run-2", [changed, new], ["email"])
    assert rows["A"] | {"_updated_at": ""} == {
        "external_id": "A",
        "name": "Acme Ltd",  # mutable: updated
        "email": "first@acme.example",  # immutable: kept
        "phone": None,
        "country": None,
        "status": None,
        "_run_id": "run-2",
        "_updated_at": "",
    }
    assert rows["B"]["email"] == "b@globex.example"  # an insert writes it
    rows = run(
        "run-3", [{"external_id": "A", "name": "X"}, {"external_id": "C", "name": "C"}], ["name"]
    )
    assert (rows["A"]["name"], rows["A"]["_run_id"]) == ("Acme Ltd", "run-2")
    assert (rows["C"]["name"], rows["C"]["_run_id"]) == ("C", "run-3")
