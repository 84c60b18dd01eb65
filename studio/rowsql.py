"""The SQL both row stores write alike (``rowstore``, SQLite; ``pgrows``, PostgreSQL): an
entity's table name, quoted names, the bookkeeping columns every row carries, the upsert's
``ON CONFLICT`` clause, and what a table keyed otherwise says. Both dialects take these as
they are, so a row upserted by either store ends the same."""

from __future__ import annotations

import re
from collections.abc import Iterable

from studio.entities import Entity
from studio.errors import StudioError

BOOKKEEPING = ("_run_id", "_updated_at")  # which run last wrote a row, and when
# The stage's order of arrival: a name no field can have (fields are identifiers), so no
# column named ``rowid`` (or anything else) can change the order the rows are copied in.
SEQ = '"#seq"'


def table_name(entity: Entity | str) -> str:
    name = entity if isinstance(entity, str) else entity.name
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def on_update(fields: list[str], key: str, immutable: Iterable[str]) -> str:
    """What the upsert does to a row that exists: set its mutable columns (and the run that
    wrote them), and fill its immutable columns that are NULL (NULL is no value to keep).
    When every column but the key is immutable, a row is touched only when one of them is
    filled. The row that exists is ``target``, the one arriving ``excluded``."""
    keep = set(immutable) - {key}
    mutable = [n for n in fields if n != key and n not in keep]
    fixed = [n for n in fields if n in keep]
    if not mutable and not fixed:
        return "DO NOTHING"
    sets = [f"{quote(n)}=excluded.{quote(n)}" for n in mutable]
    sets += [f"{quote(n)}=COALESCE(target.{quote(n)}, excluded.{quote(n)})" for n in fixed]
    sets += [f"{quote(n)}=excluded.{quote(n)}" for n in BOOKKEEPING]
    where = ""
    if not mutable:
        filled = " OR ".join(
            f"(target.{quote(n)} IS NULL AND excluded.{quote(n)} IS NOT NULL)" for n in fixed
        )
        where = f" WHERE {filled}"
    return f"DO UPDATE SET {', '.join(sets)}{where}"


def drop_keyed_otherwise(db, table: str, entity: Entity, key: list[str]) -> bool:
    """Drop the entity's ``table`` (its qualified name) when it is keyed by ``key``, not the
    entity's key, and holds no rows, so that it is made again; whether it was dropped. One that
    holds rows is refused: they were keyed by another field, and making it again loses them.
    ``db``: a connection of either store, in the transaction that makes the table."""
    if key == [entity.key]:
        return False
    if db.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
        raise StudioError(
            f"the table of entity {entity.name!r} is keyed by {', '.join(key) or 'no field'}, "
            f"not {entity.key!r}, and holds rows: delete them before changing the key"
        )
    db.execute(f"DROP TABLE {table}")
    return True
