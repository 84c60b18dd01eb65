"""Export configs to a folder of JSON files and import them back, by name.

One file per config (``connections/<name>.json``) so that configs can live in git, be reviewed
as diffs and be moved between environments. Secrets are exported as the mask unless asked for;
importing a file that still shows the mask keeps the secret already stored under that name.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from studio.config.store import ConfigStore, Source, _dotted, _with_dotted, diff
from studio.entities import entity_scope
from studio.errors import ConfigError, StudioError, readable, roots_of
from studio.private import private_dir
from studio.vault import keep_masked

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"
_UNPORTABLE = {"created_at", "updated_at"}


def slug(name: str) -> str:
    """A file name for a config name: lower case, dashes, nothing a shell or Windows minds."""
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "config"


def export_configs(
    store: ConfigStore, folder: Path, *, include_secrets: bool = False
) -> list[Path]:
    """Write every config to ``folder/<kind>/<slug>.json``; returns the files written."""
    written = []
    names = {
        k.table: {m.id: m.name for m in store.list(k.table)}
        for k in store.kinds.values()
        if k.exported
    }
    for kind in (k for k in store.kinds.values() if k.exported):
        taken: set[str] = set()
        for model in store.list(kind.table, reveal=include_secrets):
            model = portable(model, kind, names)
            name = slug(model.name)
            if name in taken:  # "A b" and "a-b" slug alike: keep both
                name = f"{name}-{model.id}"
            taken.add(name)
            path = Path(folder) / kind.table / f"{name}.json"
            if include_secrets:
                private_dir(path.parent)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
            data = model.model_dump(mode="json", exclude=_UNPORTABLE, by_alias=True)
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
            _write(path, text, private=include_secrets)
            written.append(path)
    return written


def _write(path: Path, text: str, *, private: bool) -> None:
    """Secrets in clear are the owner's only: 0600 from the first byte, not chmod-ed after."""
    if not private:
        path.write_text(text, "utf-8")
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def portable(model, kind, names: dict[str, dict[str, str]]):
    """What an export writes: references by name (ids differ between stores), and the anchor
    interval schedules count from, which is otherwise the creation time an export leaves out."""
    for path, table in kind.refs.items():
        ref = _dotted(model, path)
        if ref and ref in names.get(table, {}):
            model = _with_dotted(model, path, names[table][ref])
    schedule = getattr(model, "schedule", None)
    if schedule is not None and schedule.anchor is None and model.created_at is not None:
        model = model.model_copy(
            update={"schedule": schedule.model_copy(update={"anchor": model.created_at})}
        )
    return model


@dataclass
class Outcome:
    """What importing one file did, or would do in a dry run."""

    file: str
    kind: str
    name: str
    action: str  # create, update, unchanged, error
    fields: list[str] = field(default_factory=list)
    error: str = ""

    def __str__(self) -> str:
        what = f"{self.kind} {self.name!r}" if self.name else self.file
        if self.action == "error":
            return f"error     {what} ({self.file}): {self.error}"
        detail = f": {', '.join(self.fields)}" if self.fields and self.action == "update" else ""
        return f"{self.action:<9} {what}{detail}"


LAYOUT = "connections/<name>.json and jobs/<name>.json, as `runner export` writes them"


class _Refused(Exception):
    """Raised inside the import's transaction so that none of it is written."""


def import_configs(
    store: ConfigStore, folder: Path, *, dry_run: bool = False, source: Source = "cli"
) -> list[Outcome]:
    """Create or update each file's config by name (case-insensitive), all in one store
    transaction: if any file is wrong, every file is reported and nothing is written (a dry
    run reports the same and writes nothing either way)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder")
    kinds = [k for k in store.kinds.values() if k.exported]  # entities, connections, then jobs
    if not any((folder / k.table).is_dir() for k in kinds):
        loose = sorted(p.name for p in folder.glob("*.json"))
        shown = ", ".join(loose[:3]) + ("…" if len(loose) > 3 else "")
        found = f"it holds {shown} at the top level" if loose else "it holds no config files"
        raise StudioError(f"{folder}: no configs to import; {found}. The import reads {LAYOUT}")
    outcomes: list[Outcome] = []
    try:
        with store.transaction():
            for kind in kinds:
                existing = {m.name.casefold(): m for m in store.list(kind.table, reveal=True)}
                for path in sorted((folder / kind.table).glob("*.json")):
                    outcome = _import_file(store, kind, folder, path, existing, source)
                    outcomes.append(outcome)
            if dry_run or any(o.action == "error" for o in outcomes):
                raise _Refused
    except _Refused:
        pass
    return outcomes


def _import_file(store, kind, folder: Path, path: Path, existing: dict, source) -> Outcome:
    rel = str(path.relative_to(folder))
    try:
        data = json.loads(path.read_text("utf-8"))
        with entity_scope(store.entities()):  # with the entities imported before it
            new = kind.validate_config({k: v for k, v in data.items() if k not in _UNPORTABLE})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Outcome(rel, kind.label, "", "error", error=f"unreadable: {e}")
    except ValidationError as e:
        msg = "; ".join(readable(e, roots_of(kind.annotation)))
        name = str(data.get("name", "")) if isinstance(data, dict) else ""
        return Outcome(rel, kind.label, name, "error", error=msg)
    except AttributeError:
        return Outcome(rel, kind.label, "", "error", error="not a JSON object")
    try:
        new = store.resolve_refs(kind.table, new)  # by name in exports: compare as stored
    except ConfigError as e:
        return Outcome(rel, kind.label, new.name, "error", error="; ".join(e.messages))
    old = existing.get(new.name.casefold())
    schedule = getattr(new, "schedule", None)
    if (
        old is not None
        and schedule is not None
        and old.schedule.anchor is None
        and schedule.anchor == old.created_at  # the anchor its export wrote: nothing changed
    ):
        new = new.model_copy(update={"schedule": schedule.model_copy(update={"anchor": None})})
    outcome = _apply(store, kind.table, kind.label, rel, old, new, source)
    if outcome.action != "error":
        existing[new.name.casefold()] = new  # a later file of the same name updates it
    return outcome


def _apply(store, table, label, rel, old, new, source) -> Outcome:
    merged, missing = keep_masked(new, old)
    if missing:
        error = f"{', '.join(missing)} still masked and nothing stored to keep; add the secret"
        return Outcome(rel, label, new.name, "error", error=error)
    if old is not None:
        merged = merged.model_copy(update={"id": old.id})
    changes = diff(old, merged) if old is not None else []
    action = "create" if old is None else ("update" if changes else "unchanged")
    if action != "unchanged":
        try:
            if old is None:
                store.create(table, merged, source=source)
            else:
                store.update(table, old.id, merged, source=source)
        except (ConfigError, StudioError) as e:
            return Outcome(rel, label, new.name, "error", error=str(e))
    return Outcome(rel, label, new.name, action, fields=[c["field"] for c in changes])


def seed_examples(store: ConfigStore, folder: Path = EXAMPLES) -> list[Outcome]:
    """Load the demo configs into a brand-new store (one that has never held anything)."""
    if store.path.exists():
        return []
    return import_configs(store, folder, source="cli")
