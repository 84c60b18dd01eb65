"""The config store: connections (and later jobs) in one TinyDB file shared by every process.

The studio, the CLI, the runner and its REST API all go through ``ConfigStore``. Each operation
opens the file afresh; a change holds the cross-process lock from its read to its write, and the
change and its audit entry are written together in one atomic replace, so a crash keeps both or
neither. Secrets are sealed on the way in and masked on the way out unless a caller that must
use them (the engine) asks for ``reveal=True``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError
from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware

from studio.access import acting_name
from studio.config.base import ConfigModel, new_id
from studio.config.connections import KIND_LABELS
from studio.config.jsonfile import AtomicJSONStorage, file_lock
from studio.config.kinds import KINDS, ResourceKind
from studio.entities import Entity, entity_scope, merged
from studio.errors import ConfigError, Conflict, NotFound, readable, roots_of
from studio.private import private_dir
from studio.vault import MASK, Vault, keep_masked, load_key, masked, secret_slots

Source = Literal["studio", "cli", "api", "runner"]
CONFIG_FILE = "configs.json"
_STAMPS = ("created_at", "updated_at")


def studio_home() -> Path:
    """Where everything lives: ``STUDIO_HOME``, or ``./data`` for the embedded default."""
    return Path(os.environ.get("STUDIO_HOME") or "data").resolve()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    """``{"auth": {"type": "basic"}}`` → ``{"auth.type": "basic"}``, for readable audit diffs."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def diff(old: ConfigModel | None, new: ConfigModel | None) -> list[dict]:
    """The changed fields, old and new values, with secrets compared in clear but shown masked."""

    def views(m: ConfigModel | None) -> tuple[dict, dict]:
        if m is None:
            return {}, {}
        exclude = {"id", *_STAMPS}
        shown = _flatten(masked(m).model_dump(mode="json", exclude=exclude))
        # A password's or a token's hash: that it changed, never what it is (offline guessing)
        for field in getattr(type(m), "unaudited", ()):
            if shown.get(field):
                shown[field] = MASK
        return _flatten(m.model_dump(mode="json", exclude=exclude)), shown

    (old_plain, old_shown), (new_plain, new_shown) = views(old), views(new)
    changed = [
        {"field": key, "old": old_shown.get(key), "new": new_shown.get(key)}
        for key in sorted(old_plain.keys() | new_plain.keys())
        if old_plain.get(key) != new_plain.get(key)
    ]
    # A created or deleted config lists only the fields it had, not every empty default.
    both = old is not None and new is not None
    return [c for c in changed if both or any(c[k] not in ("", None, []) for k in ("old", "new"))]


def change_text(change: dict) -> str:
    """One change of an audit entry as the studio and the CLI show it: ``status: 'active' →
    'disabled'``; a field that did not exist before (a created config, an added header) shows
    its new value only and one that is gone says so, rather than showing None."""
    field, old, new = change["field"], change["old"], change["new"]
    if old is None:
        return f"{field}: {new!r}"
    if new is None:
        return f"{field}: {old!r} removed"
    return f"{field}: {old!r} → {new!r}"


def _dotted(obj: object, path: str) -> object:
    """``obj.a.b`` for a model, ``obj["a"]["b"]`` for a stored document; None when missing."""
    for part in path.split(".") if path else []:
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _with_dotted(model: ConfigModel, path: str, value: object) -> ConfigModel:
    head, _, rest = path.partition(".")
    if not rest:
        return model.model_copy(update={head: value})
    return model.model_copy(update={head: _with_dotted(getattr(model, head), rest, value)})


class ConfigStore:
    """Create, read, update, activate, disable and delete configs, with an audit trail."""

    def __init__(self, home: Path | None = None, kinds: dict[str, ResourceKind] = KINDS):
        self.home = Path(home) if home else studio_home()
        self.path = self.home / CONFIG_FILE
        self.kinds = kinds
        self._vault: Vault | None = None
        self._local = threading.local()  # this thread's open transaction, if any

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(load_key(self.home))
        return self._vault

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[TinyDB]:
        """A fresh TinyDB over one snapshot; with ``write``, under the lock and saved once at
        the end (CachingMiddleware buffers every table write until ``close``). Inside
        ``transaction()`` every read and change goes to the transaction's snapshot."""
        open_tx = getattr(self._local, "db", None)
        if open_tx is not None:
            with entity_scope(self._entities(open_tx)):  # as changed so far in the transaction
                yield open_tx
            return
        private_dir(self.home)  # 0700: it holds the key, the configs and the imported data
        lock = file_lock(self.home / f"{CONFIG_FILE}.lock") if write else contextlib.nullcontext()
        with lock:
            storage = CachingMiddleware(AtomicJSONStorage)
            storage.WRITE_CACHE_SIZE = 1 << 62  # never flush half a change
            db = TinyDB(self.path, storage=storage)
            with entity_scope(self._entities(db)):  # jobs are checked against these
                yield db
            if write:
                storage.storage.sweep()
                db.close()  # flushes: one atomic replace for the whole change

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several changes under one lock, written in one atomic replace when the block ends:
        all of them or, if it raises (or the process dies), none. Reads inside see them."""
        if getattr(self._local, "db", None) is not None:
            yield  # already inside one
            return
        with self._db(write=True) as db:
            self._local.db = db
            try:
                yield
            finally:
                self._local.db = None

    def _kind(self, kind: str) -> ResourceKind:
        try:
            return self.kinds[kind]
        except KeyError:
            raise NotFound(f"There is no kind of config called {kind!r}") from None

    @staticmethod
    def _entities(db: TinyDB) -> dict[str, Entity]:
        return merged(db.table("entities", cache_size=0).all())

    def entities(self) -> dict[str, Entity]:
        """Every target entity: the built-in catalog and the entities and fields of this home."""
        with self._db() as db:
            return self._entities(db)

    def _validate(self, kind: ResourceKind, data: object, db: TinyDB) -> ConfigModel:
        """``data`` as a config, checked against this store's entities as they are in ``db``
        now (an import may bring an entity and the jobs that use it in one transaction)."""
        if isinstance(data, ConfigModel):
            data = data.model_dump(mode="json")
        try:
            with entity_scope(self._entities(db)):
                return kind.validate_config(data)
        except ValidationError as e:
            raise ConfigError(readable(e, roots_of(kind.annotation))) from None

    def _guard(self, db: TinyDB, kind: ResourceKind, old, new) -> None:
        """Refuse a change that would strand data (the kind's guard) or leave a config that
        depends on it invalid (``kind.revalidates``: every job, checked against the entities
        as they would be), naming what is in the way."""
        if kind.guard is not None:
            from studio.stores import open_rows  # the row store imports the entities

            jobs = [dict(d) for d in db.table("jobs", cache_size=0).all()]
            kind.guard(old, new, jobs, open_rows(self.home))
        if not kind.revalidates:
            return
        docs = [d for d in db.table(kind.table, cache_size=0).all() if d.get("id") != old.id]
        after = merged([*docs, *([new.model_dump(mode="json")] if new is not None else [])])
        with entity_scope(after):
            for table in kind.revalidates:
                other = self.kinds[table]
                for doc in db.table(table, cache_size=0).all():
                    try:
                        other.validate_config(dict(doc))
                    except ValidationError as e:
                        problem = readable(e, roots_of(other.annotation))[0]
                        raise Conflict(
                            f"{other.label.capitalize()} {doc.get('name')!r} would no longer be "
                            f"valid: {problem}"
                        ) from None

    def _load(self, kind: ResourceKind, doc: dict) -> ConfigModel:
        try:
            model = kind.validate_config(dict(doc))
        except ValidationError as e:
            # Valid when saved, not any more (a field made required in entities.json, say).
            problems = readable(e, roots_of(kind.annotation))
            raise ConfigError(
                [
                    f"The stored {kind.label} {doc.get('name')!r} is no longer valid: {p}"
                    for p in problems
                ]
            ) from None
        return self.vault.open(model)

    def _find(self, db: TinyDB, kind: ResourceKind, ref: str) -> tuple[int, ConfigModel] | None:
        """By id, else by name, case-insensitively: the CLI and API accept either."""
        docs = db.table(kind.table, cache_size=0).all()
        for doc in docs:
            if doc.get("id") == ref:
                return doc.doc_id, self._load(kind, doc)
        folded = str(ref).casefold()
        for doc in docs:
            if str(doc.get("name", "")).casefold() == folded:
                return doc.doc_id, self._load(kind, doc)
        return None

    def _require(self, db: TinyDB, kind: ResourceKind, ref: str) -> tuple[int, ConfigModel]:
        found = self._find(db, kind, ref)
        if found is None:
            raise NotFound(f"No {kind.label} called {ref!r}")
        return found

    def _check_unique(self, db: TinyDB, kind: ResourceKind, model: ConfigModel) -> None:
        """Names (and a kind's other unique fields, when set) are unique, whatever their case."""
        for name in kind.unique:
            value = str(getattr(model, name, "") or "").casefold()
            if not value:
                continue
            for doc in db.table(kind.table, cache_size=0).all():
                if doc["id"] != model.id and str(doc.get(name, "")).casefold() == value:
                    if name == "name":
                        raise Conflict(
                            f"Name: a {kind.label} called {doc[name]!r} exists already "
                            "(names are unique, whatever their case)"
                        )
                    title = type(model).model_fields[name].title or name
                    raise Conflict(
                        f"{title}: {doc[name]!r} is taken by {kind.label} {doc['name']!r} "
                        f"({title.lower()}s are unique)"
                    )

    def _resolve_refs(self, db: TinyDB, kind: ResourceKind, model: ConfigModel) -> ConfigModel:
        """A reference may be given by name ("connection_id": "Shop API"); store the id, and
        refuse a reference to nothing, or to a config of the wrong kind. References may sit in
        nested settings ("destination.connection_id"); an empty one is no reference."""
        for field, table in kind.refs.items():
            ref = _dotted(model, field)
            if not ref:
                continue
            owner = _dotted(model, field.rpartition(".")[0]) if "." in field else model
            title = type(owner).model_fields[field.rpartition(".")[2]].title or field
            target = self._find(db, self._kind(table), ref)
            if target is None:
                raise ConfigError([f"{title}: there is no {self.kinds[table].label} {ref!r}"])
            need = getattr(type(model), "ref_kinds", {}).get(field)
            have = getattr(target[1], "kind", None)
            if need and have != need:
                what = f"{target[1].name!r} is a {KIND_LABELS[have]} {self.kinds[table].label}"
                raise ConfigError(
                    [
                        f"{title}: {what}; a {kind.label} of this kind needs "
                        f"a {KIND_LABELS[need]} one"
                    ]
                )
            model = _with_dotted(model, field, target[1].id)
        return model

    def _record(self, db, kind, action, model, source, changes) -> None:
        db.table("audit", cache_size=0).insert(
            {
                "at": utcnow().isoformat(),
                "source": source,
                "user": acting_name(),
                "action": action,
                "kind": kind.table,
                "id": model.id,
                "name": model.name,
                "changes": changes,
            }
        )

    def _put(self, db, kind, doc_id: int | None, model: ConfigModel) -> None:
        sealed = self.vault.seal(model)
        table = db.table(kind.table, cache_size=0)
        if doc_id is None:
            table.insert(sealed)
        else:

            def replace(doc: dict) -> None:
                doc.clear()
                doc.update(sealed)

            table.update(replace, doc_ids=[doc_id])

    # --- reads ------------------------------------------------------------------------------

    def version(self) -> tuple[int, int]:
        """Changes whenever the file does (it is replaced on every write): readers that poll,
        like the runner, reload only then."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_ino)

    def list(self, kind: str = "connections", *, reveal: bool = False) -> list[ConfigModel]:
        """Every config of a kind, sorted by name; secrets masked unless ``reveal``."""
        k = self._kind(kind)
        with self._db() as db:
            models = [self._load(k, doc) for doc in db.table(k.table, cache_size=0).all()]
        models.sort(key=lambda m: m.name.casefold())
        return models if reveal else [masked(m) for m in models]

    def get(self, kind: str, ref: str, *, reveal: bool = False) -> ConfigModel:
        k = self._kind(kind)
        with self._db() as db:
            _, model = self._require(db, k, ref)
        return model if reveal else masked(model)

    def resolve_refs(self, kind: str, model: ConfigModel) -> ConfigModel:
        """``model`` with its references given by name turned into ids, as a save would store
        them; raises ``ConfigError`` for a reference to nothing."""
        k = self._kind(kind)
        with self._db() as db:
            return self._resolve_refs(db, k, model)

    def dependents(self, kind: str, ref: str) -> list[str]:
        """What uses this config ("job 'Nightly products'"): found through the kinds' refs."""
        k = self._kind(kind)
        with self._db() as db:
            _, model = self._require(db, k, ref)
            return self._dependents(db, k, model)

    def _dependents(self, db: TinyDB, kind: ResourceKind, model: ConfigModel) -> list[str]:
        found = []
        for other in self.kinds.values():
            fields = [f for f, target in other.refs.items() if target == kind.table]
            for doc in db.table(other.table, cache_size=0).all() if fields else []:
                if any(_dotted(doc, f) == model.id for f in fields):
                    found.append(f"{other.label} {doc.get('name')!r}")
        return sorted(found)

    def audit(self, kind: str | None = None, ref: str | None = None) -> list[dict]:
        """The audit trail, newest first; of one config when ``ref`` (id or name) is given.

        A deleted config has no record left, so its trail is matched by id or by name."""
        with self._db() as db:
            entries = db.table("audit", cache_size=0).all()
            if ref is not None and kind is not None:
                found = self._find(db, self._kind(kind), ref)
                ids = (
                    {found[1].id}
                    if found
                    else {
                        e["id"]
                        for e in entries
                        if e["kind"] == kind and str(e["name"]).casefold() == ref.casefold()
                    }
                    | {ref}
                )
                entries = [e for e in entries if e["kind"] == kind and e["id"] in ids]
            elif kind is not None:
                entries = [e for e in entries if e["kind"] == kind]
        return [dict(e) for e in reversed(entries)]

    # --- changes ----------------------------------------------------------------------------

    def create(self, kind: str, data: object, *, source: Source) -> ConfigModel:
        k = self._kind(kind)
        with self._db(write=True) as db:
            model = self._validate(k, data, db)
            if any(d.get("id") == model.id for d in db.table(k.table, cache_size=0).all()):
                raise Conflict(f"A {k.label} with id {model.id!r} exists already")
            model = self._resolve_refs(db, k, model)
            self._check_unique(db, k, model)
            model, missing = keep_masked(model, None)
            self._refuse_masked(missing)
            now = utcnow()
            model = model.model_copy(update={"created_at": now, "updated_at": now})
            self._put(db, k, None, model)
            self._record(db, k, "create", model, source, diff(None, model))
        return masked(model)

    def update(self, kind: str, ref: str, data: object, *, source: Source) -> ConfigModel:
        """Replace a config; fields still showing the mask keep their stored secret."""
        k = self._kind(kind)
        with self._db(write=True) as db:
            new = self._validate(k, data, db)
            doc_id, old = self._require(db, k, ref)
            return masked(self._replace(db, k, doc_id, old, new, source))

    def modify(
        self, kind: str, ref: str, change: Callable[[ConfigModel], object], *, source: Source
    ) -> ConfigModel:
        """Read, change and write one config under one lock: no update of another process
        can slip in between. ``change`` gets the stored config (secrets in clear)."""
        k = self._kind(kind)
        with self._db(write=True) as db:
            doc_id, old = self._require(db, k, ref)
            new = self._validate(k, change(old.model_copy(deep=True)), db)
            return masked(self._replace(db, k, doc_id, old, new, source))

    def _replace(self, db, k, doc_id, old, new, source, action="update") -> ConfigModel:
        kept = [f for _p, o, f in secret_slots(new) if getattr(o, f) == MASK]
        new, missing = keep_masked(new, old)
        self._refuse_masked(missing)
        moved = [
            f for f in getattr(type(new), "secret_bound", ()) if _dotted(new, f) != _dotted(old, f)
        ]
        if kept and moved:
            # A stored secret is only ever sent where it was typed for: a new address needs
            # the secret typed again, or anyone who may edit a connection could collect it.
            head, _, leaf = moved[0].rpartition(".")
            owner = _dotted(new, head) if head else new
            title = type(owner).model_fields[leaf].title or leaf
            raise ConfigError(
                [
                    f"{title}: changed, so the stored secrets are not sent to the new "
                    "address: enter them again"
                ]
            )
        new = new.model_copy(update={"id": old.id, "created_at": old.created_at})
        new = self._resolve_refs(db, k, new)
        self._check_unique(db, k, new)
        changes = diff(old, new)
        if not changes:
            return old
        self._guard(db, k, old, new)
        new = new.model_copy(update={"updated_at": utcnow()})
        self._put(db, k, doc_id, new)
        self._record(db, k, action, new, source, changes)
        return new

    def clone(self, kind: str, ref: str, *, source: Source) -> ConfigModel:
        """A copy named "Copy of …" (made unique), disabled so that it never runs beside its
        original, with its other unique fields (an external key) left empty."""
        k = self._kind(kind)
        if not k.clonable:
            raise Conflict(f"A {k.label} is not cloned: create another one")
        with self._db(write=True) as db:
            _, original = self._require(db, k, ref)
            names = {
                str(d.get("name", "")).casefold() for d in db.table(k.table, cache_size=0).all()
            }
            name, n = f"Copy of {original.name}", 2
            while name.casefold() in names:
                name, n = f"Copy of {original.name} ({n})", n + 1
            now = utcnow()
            update = {
                "id": new_id(),
                "name": name,
                "status": "disabled",
                "created_at": now,
                "updated_at": now,
            } | {f: "" for f in k.unique if f != "name"}
            copy = original.model_copy(update=update)
            self._put(db, k, None, copy)
            self._record(
                db,
                k,
                "create",
                copy,
                source,
                [{"field": "cloned from", "old": None, "new": original.name}],
            )
        return masked(copy)

    def set_status(self, kind: str, ref: str, status: str, *, source: Source) -> ConfigModel:
        """Activate or disable: recorded as such in the audit trail, not as an update."""
        if status not in ("active", "disabled"):
            raise ConfigError([f"Status: must be 'active' or 'disabled', not {status!r}"])
        k = self._kind(kind)
        action = "activate" if status == "active" else "disable"
        with self._db(write=True) as db:
            doc_id, old = self._require(db, k, ref)
            new = old.model_copy(update={"status": status})
            return masked(self._replace(db, k, doc_id, old, new, source, action=action))

    def delete(self, kind: str, ref: str, *, source: Source) -> ConfigModel:
        """Delete, unless something still uses it: then nothing changes and the error lists
        the dependents."""
        k = self._kind(kind)
        with self._db(write=True) as db:
            doc_id, old = self._require(db, k, ref)
            users = self._dependents(db, k, old)
            if users:
                raise Conflict(
                    f"{k.label.capitalize()} {old.name!r} is used by {', '.join(users)}; "
                    "change or delete those first"
                )
            self._guard(db, k, old, None)
            db.table(k.table, cache_size=0).remove(doc_ids=[doc_id])
            self._record(db, k, "delete", old, source, diff(old, None))
        return masked(old)

    @staticmethod
    def _refuse_masked(missing: list[str]) -> None:
        if missing:
            raise ConfigError(
                [
                    f"{name}: still shows the mask {MASK} but no secret is stored; enter it"
                    for name in missing
                ]
            )
