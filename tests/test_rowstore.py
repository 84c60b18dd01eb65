"""The imported rows (studio/rowstore.py): each run stages its rows and copies them in with one
short transaction. The tests that go through ``open_rows`` run against SQLite and PostgreSQL
(the ``backend`` fixture); those that look inside the SQLite file are SQLite's own
(tests/test_pgstores.py has PostgreSQL's)."""

from __future__ import annotations

import sqlite3

import pytest

from studio.errors import StudioError
from studio.rowstore import read_rows
from tests.dbservers import store_sql


def _read(home, name: str, **kw) -> tuple[list[dict], int]:
    from studio.stores import open_rows

    return open_rows(home).read(name, **kw)


@pytest.mark.usefixtures("backend")
def test_runs_side_by_side_do_not_lock_each_other_out(store):
    """Each run stages its rows; the store's write lock is taken only to copy them in."""
    from studio.entities import entity
    from studio.stores import open_rows

    spec = entity("Suppliers")
    first = open_rows(store.home).writer(spec, "run-1", ["external_id", "name"])
    second = open_rows(store.home).writer(spec, "run-2", ["external_id", "name"])
    first.write([{"external_id": "A", "name": "from run 1"}])
    second.write([{"external_id": "B", "name": "from run 2"}])
    second.commit()  # while the first run is still going
    first.write([{"external_id": "C", "name": "from run 1"}])
    first.rollback()
    first.write([{"external_id": "D", "name": "from run 1"}])
    first.commit()
    for w in (first, second):
        w.close()
    rows, total = _read(store.home, "Suppliers")
    assert total == 2 and {r["external_id"]: r["_run_id"] for r in rows} == {
        "B": "run-2",
        "D": "run-1",
    }


@pytest.mark.usefixtures("backend")
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
        return {r["external_id"]: r for r in _read(store.home, "Suppliers")[0]}

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


def _table(home, sql: str, rows: list[tuple] = ()) -> None:
    """Make the store's table as an older version of the studio (or a hand) left it."""
    from studio.rowstore import connect

    connect(home).close()  # the store's file, private, as the studio makes it
    with sqlite3.connect(home / "entities.sqlite") as db:
        db.execute(sql)
        for row in rows:
            db.execute(f"INSERT INTO suppliers VALUES ({', '.join('?' for _ in row)})", row)
    db.close()


def _key_of(home, table: str) -> list[str]:
    with sqlite3.connect(home / "entities.sqlite") as db:
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
    db.close()
    return [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]


def _write(home, spec, run_id: str, rows: list[dict], immutable=()) -> None:
    from studio.stores import open_rows

    writer = open_rows(home).writer(spec, run_id, list(rows[0]), immutable=immutable)
    try:
        writer.write(rows)
        writer.commit()
    finally:
        writer.close()


def test_an_empty_table_keyed_otherwise_is_made_again_with_the_entity_key(store):
    """Re-keyed (or deleted and made again with another key): an empty table is rebuilt, so
    the upsert's ON CONFLICT matches its primary key; its old columns go with it."""
    from studio.entities import entity

    _table(store.home, "CREATE TABLE suppliers (name TEXT, old TEXT, PRIMARY KEY (name))")
    _write(store.home, entity("Suppliers"), "run-1", [{"external_id": "A", "name": "Acme"}])
    assert _key_of(store.home, "suppliers") == ["external_id"]
    rows, total = read_rows(store.home, "Suppliers")
    assert total == 1 and rows[0]["name"] == "Acme" and "old" not in rows[0]
    # made again under the same name, keyed by name, while the table holds a row: refused
    rekeyed = entity("Suppliers").model_copy(update={"key": "name"})
    with pytest.raises(StudioError, match="keyed by external_id, not 'name', and holds rows"):
        _write(store.home, rekeyed, "run-2", [{"external_id": "B", "name": "Globex"}])
    assert read_rows(store.home, "Suppliers")[1] == 1  # nothing dropped, nothing written


def test_a_table_keyed_otherwise_with_rows_is_refused_and_kept(store):
    from studio.entities import entity

    _table(
        store.home,
        "CREATE TABLE suppliers (external_id TEXT, name TEXT, PRIMARY KEY (name))",
        [("A", "Acme")],
    )
    with pytest.raises(StudioError, match="holds rows: delete them before changing the key"):
        _write(store.home, entity("Suppliers"), "run-1", [{"external_id": "B", "name": "X"}])
    assert _key_of(store.home, "suppliers") == ["name"]
    with sqlite3.connect(store.home / "entities.sqlite") as db:
        assert db.execute("SELECT external_id, name FROM suppliers").fetchall() == [("A", "Acme")]
    db.close()


def test_a_failed_copy_propagates_its_error_and_the_writers_go_on(store):
    """A real SQLite error in the copy (a CHECK on the key column): the group's commit raises
    it, ``rollback`` drops the staged rows without a second error, and the writers work on."""
    from studio.entities import entity
    from studio.stores import open_rows

    _table(
        store.home,
        "CREATE TABLE suppliers (external_id TEXT CHECK (external_id <> 'BAD'), name TEXT, "
        "email TEXT, phone TEXT, country TEXT, status TEXT, _run_id TEXT, _updated_at TEXT, "
        "PRIMARY KEY (external_id))",
    )
    rows = open_rows(store.home)
    parent = rows.writer(entity("Suppliers"), "run-1", ["external_id", "name"])
    other = rows.writer(entity("Products"), "run-1", ["external_id", "name"], part="Products")
    group = rows.together([parent, other])
    parent.write([{"external_id": "OK", "name": "fine"}, {"external_id": "BAD", "name": "no"}])
    other.write([{"external_id": "P1", "name": "in the same transaction"}])
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        group.commit()
    group.rollback()  # no "cannot rollback - no transaction is active"
    assert read_rows(store.home, "Suppliers")[1] == 0
    assert read_rows(store.home, "Products")[1] == 0  # all or nothing
    parent.write([{"external_id": "GOOD", "name": "after"}])
    group.commit()
    with pytest.raises(sqlite3.IntegrityError):  # and alone, through EntityWriter
        parent.write([{"external_id": "BAD", "name": "no"}])
        parent.commit()
    parent.rollback()
    group.close()
    assert [r["external_id"] for r in read_rows(store.home, "Suppliers")[0]] == ["GOOD"]
    assert read_rows(store.home, "Products")[1] == 0


@pytest.mark.usefixtures("backend")
def test_immutable_columns_that_are_null_are_filled(store):
    """NULL is no value to keep: an immutable column is filled where it is NULL and kept where
    it is set; with only immutable columns mapped, only the rows filled are touched."""
    from studio.entities import entity

    spec = entity("Suppliers")
    _write(
        store.home,
        spec,
        "run-1",
        [
            {"external_id": "A", "name": "Acme", "email": None},
            {"external_id": "B", "name": "Globex", "email": "b@globex.example"},
        ],
    )
    _write(
        store.home,
        spec,
        "run-2",
        [
            {"external_id": "A", "name": "Acme Ltd", "email": "a@acme.example"},
            {"external_id": "B", "name": "Globex Inc", "email": "new@globex.example"},
        ],
        immutable=["email"],
    )
    rows = {r["external_id"]: r for r in _read(store.home, "Suppliers")[0]}
    assert (rows["A"]["name"], rows["A"]["email"]) == ("Acme Ltd", "a@acme.example")  # filled
    assert (rows["B"]["name"], rows["B"]["email"]) == ("Globex Inc", "b@globex.example")  # kept
    _write(store.home, spec, "run-3", [{"external_id": "C", "phone": "1"}])
    _write(
        store.home,
        spec,
        "run-4",
        [{"external_id": "B", "phone": "2"}, {"external_id": "C", "phone": "3"}],
        immutable=["phone"],
    )
    rows = {r["external_id"]: r for r in _read(store.home, "Suppliers")[0]}
    assert (rows["B"]["phone"], rows["B"]["_run_id"]) == ("2", "run-4")  # was NULL: filled
    assert (rows["C"]["phone"], rows["C"]["_run_id"]) == ("1", "run-3")  # set: not touched
    assert (rows["A"]["phone"], rows["A"]["_run_id"]) == (None, "run-2")  # not in the run


@pytest.mark.usefixtures("backend")
def test_of_two_rows_with_the_same_key_the_last_one_wins_whatever_the_columns(store):
    """Rows are copied in the order written; a column named ``rowid`` (refused by the config,
    but not by the row store) does not change that order."""
    from studio.entities import Entity, EntityField

    spec = Entity(
        name="Ordered",
        key="code",
        fields={"code": EntityField(), "rowid": EntityField(type="integer")},
    )
    rows = [{"code": "K", "rowid": 9}, {"code": "K", "rowid": 1}, {"code": "K", "rowid": 5}]
    _write(store.home, spec, "run-1", rows)
    assert store_sql(store.home, 'SELECT code, "rowid" FROM ordered') == [("K", 5)]
    _write(store.home, spec, "run-2", [{"code": "K", "rowid": 7}, {"code": "K", "rowid": 2}])
    assert store_sql(store.home, 'SELECT code, "rowid" FROM ordered') == [("K", 2)]
