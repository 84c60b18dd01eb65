"""``runner entities …``: target entities from the command line. ``list`` and ``show`` give
built-in entities too, saying what each is; ``create`` and ``replace`` take a config file (the
format ``runner export`` writes to ``entities/``); ``add-field`` adds one field, the analyst's
most common change. The handlers only parse and print: ``studio.entityviews`` does the rest,
as it does for the REST API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runner.output import print_json, print_list, print_table, when
from studio.config.store import ConfigStore
from studio.entities import FieldType, catalog
from studio.entityviews import (
    KIND_TEXT,
    EntityView,
    add_entity_field,
    delete_entity,
    entity_view,
    entity_views,
    replace_entity,
)
from studio.errors import StudioError

FIELD_TYPES = FieldType.__args__

FILE_HELP = """FILE is one entity config, as `export` writes them to DIR/entities/:

  {"name": "Feed items", "key": "id",
   "fields": [{"name": "id", "required": true}, {"name": "stock", "type": "integer"}]}

Fields have a name, a type (string, integer, number, boolean, date, datetime), a required
mark and a description. A config named after a built-in entity holds the fields added to it
and no key. A change is refused while a job maps, or imported rows hold, a field it would
remove or retype, or the key it would change. `import DIR` creates or updates many at once."""


def _fields_text(view: EntityView) -> str:
    custom = sum(f.custom for f in view.fields)
    mine = f" ({custom} custom)" if custom and view.kind == "extended" else ""
    return f"{len(view.fields)}{mine}"


def entities_list(store: ConfigStore, args: argparse.Namespace) -> int:
    print_list(
        args,
        entity_views(store),
        lambda v: {
            "name": v.name,
            "kind": KIND_TEXT[v.kind],
            "key": v.key,
            "fields": _fields_text(v),
            "updated": when(v.config.updated_at) if v.config else "",
        },
        lambda v: v.model_dump(mode="json"),
    )
    return 0


def entities_show(store: ConfigStore, args: argparse.Namespace) -> int:
    view = entity_view(store, args.name)
    if args.json:
        print_json(view.model_dump(mode="json"))
        return 0
    print(f"{view.name} ({KIND_TEXT[view.kind]}), key {view.key}")
    if view.description:
        print(view.description)
    print()
    print_table(
        [
            {
                "field": f.name,
                "type": f.type,
                "required": "yes" if f.required else "",
                "custom": "yes" if f.custom else "",
                "description": f.description,
            }
            for f in view.fields
        ]
    )
    return 0


def entities_delete(store: ConfigStore, args: argparse.Namespace) -> int:
    gone = delete_entity(store, args.name, source="cli")
    if gone.name in catalog():
        print(f"deleted the custom fields of entity {gone.name!r}; it has its built-in fields only")
    else:
        print(f"deleted entity {gone.name!r}")
    return 0


def _config_file(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudioError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(data, dict):
        raise StudioError(f"{path}: holds no JSON object (one entity config per file)")
    return data


def _said(view: EntityView) -> str:
    custom = sum(f.custom for f in view.fields) if view.kind == "extended" else 0
    mine = f", {custom} custom" if custom else ""
    return (
        f"{view.name!r} ({KIND_TEXT[view.kind]}, key {view.key}, {len(view.fields)} fields{mine})"
    )


def entities_create(store: ConfigStore, args: argparse.Namespace) -> int:
    model = store.create("entities", _config_file(args.file), source="cli")
    print(f"created entity {_said(entity_view(store, model.id))}")
    return 0


def entities_replace(store: ConfigStore, args: argparse.Namespace) -> int:
    data = _config_file(args.file)
    view = replace_entity(store, str(data.get("name", "")), data, source="cli")
    print(f"replaced entity {_said(view)}")
    return 0


def entities_add_field(store: ConfigStore, args: argparse.Namespace) -> int:
    field = {
        "name": args.field,
        "type": args.type,
        "required": args.required,
        "description": args.description,
    }
    view = add_entity_field(store, args.name, field, source="cli")
    print(f"added {args.type} field {args.field!r} to entity {_said(view)}")
    return 0


def add_entity_commands(actions, command) -> None:
    """The entity actions but ``audit`` (shared with the other kinds); ``command`` is the CLI's
    own ``_command``, which makes a subcommand that ``main`` dispatches to its handler."""
    c = command(
        actions, "list", "a table of every entity, built-in ones too, and its kind", entities_list
    )
    c.add_argument("--json", action="store_true", help="print JSON")
    c = command(actions, "show", "one entity: its kind, key and every field", entities_show)
    c.add_argument("name", metavar="NAME", help="entity name or id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = command(
        actions,
        "delete",
        "delete an entity of one's own, or the custom fields of a built-in one (refused while "
        "jobs import into it or its rows hold them)",
        entities_delete,
    )
    c.add_argument("name", metavar="NAME", help="entity name or id")
    for action, text, handler in [
        ("create", "create an entity (or a built-in one's custom fields)", entities_create),
        ("replace", "replace the config of the entity FILE names", entities_replace),
    ]:
        c = command(actions, action, text, handler, description=FILE_HELP)
        c.add_argument("file", metavar="FILE", type=Path, help="a JSON file: one entity config")
    c = command(
        actions,
        "add-field",
        "add one field to an entity (a built-in one gets a config holding it)",
        entities_add_field,
    )
    c.add_argument("name", metavar="ENTITY", help="entity name or id")
    c.add_argument("field", metavar="NAME", help="the field's name (letters, digits, _)")
    c.add_argument("--type", default="string", choices=FIELD_TYPES, help="default: string")
    c.add_argument("--required", action="store_true", help="rows must have a value for it")
    c.add_argument("--description", default="", help="what it holds")
