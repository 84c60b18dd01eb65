"""Import jobs: the builder analysts spend their day in.

Layout only. The job being edited is a draft kept in the session (``jb_drafts``), apart from the
widgets, so that nothing typed is lost when the analyst switches pages (Streamlit forgets the
state of widgets that are not drawn); widgets are seeded from the draft and write back into it
on every run. The last test of each job is kept too (``jb_tests``): the content finder and the
mapping work on its cached responses, inside a fragment, so typing reruns only that part and
never calls the API again. Every action is one call into ``studio``.
"""

import json
import uuid
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from pages.common import config_actions, flash, show_flash
from studio.curl import parse_curl
from studio.engine import find_records, preview
from studio.entities import load_entities
from studio.errors import ConfigError, StudioError
from studio.files import connect
from studio.filesource import preview_file
from studio.jobs import (
    BUILTINS,
    DownloadBehavior,
    NoBehavior,
    PaginationBehavior,
    RetryBehavior,
    draft_job,
)
from studio.mapping import FieldMap, Mapper, profile, suggest, unmapped_required
from studio.models import Header
from studio.schedules import DEFAULT_MODE, WEEKDAYS, Schedule, next_runs
from studio.store import ConfigStore

NEW = "+ New job"
SECTIONS = {
    "api": ["Basics", "Calls and tests", "Records and mapping"],
    "file": ["Basics", "Files and test", "Records and mapping"],
}
CONN_KIND = {"api": "api", "file": "file_server"}
DELIMITERS = {",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
SHOWN = 200  # rows drawn in a table; counts are always of everything
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
TYPES = ["string", "integer", "number", "boolean", "date", "datetime"]
BEHAVIORS = {
    "none": "None (one request)",
    "retry": "Retry (poll until a condition)",
    "download": "Download (a file)",
    "pagination": "Pagination",
}
BEHAVIOR_FIELDS = {
    cls.model_fields["type"].default: set(cls.model_fields)
    for cls in (NoBehavior, RetryBehavior, DownloadBehavior, PaginationBehavior)
}
FREQUENCIES = {
    "manual": "Manual (no schedule)",
    "minutes": "Minutes",
    "hourly": "Hourly",
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "cron": "Custom (cron)",
}

store = ConfigStore()
state = st.session_state
drafts: dict = state.setdefault("jb_drafts", {})
tests: dict = state.setdefault("jb_tests", {})
entities = load_entities()


st.title("Import jobs")
show_flash("jb")

jobs = store.list("jobs")
connections = store.list("connections")
conn_names = {c.id: c.name for c in connections}
if jobs:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Name": j.name,
                    "Connection": conn_names.get(j.connection_id, "?"),
                    "Entity": j.entity,
                    "Status": j.status,
                    "Schedule": j.schedule.describe(),
                    "Last change": j.updated_at,
                }
                for j in jobs
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"Last change": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )

if "jb_pick_next" in state:
    state["jb_pick"] = state.pop("jb_pick_next")
names = [j.name for j in jobs]
if "jb_pick" not in state:  # back from another page: reopen what was open
    state["jb_pick"] = state.get("jb_open", NEW)
if state["jb_pick"] not in [NEW, *names]:
    state["jb_pick"] = NEW
choice = st.selectbox("Open", [NEW, *names], key="jb_pick")
state["jb_open"] = choice
current = next((j for j in jobs if j.name == choice), None)
jid = current.id if current else "new"
api_connections = [c for c in connections if c.kind == "api"]


def new_draft(kind: str = "api") -> dict:
    active = [c for c in connections if c.status == "active" and c.kind == CONN_KIND[kind]]
    draft = {
        "kind": kind,
        "name": "",
        "status": "active",
        "connection_id": active[0].id if active else "",
        "entity": "Products",
        "external_key": "",
        "schedule": {"type": "manual"},
        "mapping": [],
    }
    if kind == "api":
        return draft | {"calls": [{"method": "GET", "path": ""}], "content_finder": "$"}
    return draft | {"source": {"mode": "path", "path": ""}, "csv": {"delimiter": ","}}


if jid not in drafts:
    drafts[jid] = (
        current.model_dump(mode="json", exclude={"created_at", "updated_at"})
        if current
        else new_draft()
    )
draft = drafts[jid]
uids: list = state.setdefault(
    f"jb_uids.{jid}", [uuid.uuid4().hex[:8] for _ in draft.get("calls", [])]
)


def key(*parts) -> str:
    return ".".join(["jb", jid, *map(str, parts)])


def seeded(k: str, value) -> str:
    """Give a widget its draft value unless it already holds one (the widget may be new, or
    forgotten after a visit to another page)."""
    if k not in state:
        state[k] = value
    return k


def forget(prefix: str) -> None:
    for k in [k for k in state if str(k).startswith(prefix)]:
        del state[k]


# What an empty cell holds: a checkbox needs a bool; "secret" stays unset, so that the model
# guesses it from the variable's name.
BLANK = {"required": False, "secret": None}


def table(name: str, rows: list[dict], columns: list[str], config: dict) -> list[dict]:
    """An editable table bound to the draft. The editor keeps only its edits, relative to the
    rows it started from; those rows are kept beside it, and replacing them (a suggestion, a
    pasted cURL) starts a new editor under a new version of the key."""
    version = state.setdefault(key(name, "version"), 0)
    editor = key(name, version)
    base = key(name, "base")
    if editor not in state or base not in state:
        state[base] = [dict(r) for r in rows]
    # Blanks as "" (and False for the checkbox), never NaN: a column that is empty in every row
    # would otherwise be typed float, and the editor refuses text in it.
    frame = pd.DataFrame(
        [
            {c: r.get(c) if r.get(c) is not None else BLANK.get(c, "") for c in columns}
            for r in state[base]
        ],
        columns=columns,
    )
    edited = st.data_editor(
        frame,
        key=editor,
        num_rows="dynamic",
        width="stretch",
        column_config=config,
        hide_index=True,
    )
    out = []
    for row in edited.to_dict("records"):
        clean = {
            k: (None if (not isinstance(v, list | dict) and pd.isna(v)) else v)
            for k, v in row.items()
        }
        if any(v not in (None, "") for v in clean.values()):
            out.append(clean)
    return out


def replace_table(name: str, rows: list[dict]) -> None:
    state[key(name, "version")] = state.get(key(name, "version"), 0) + 1
    state[key(name, "base")] = rows


def param_table(name: str, rows: list[dict]) -> list[dict]:
    """A name/value table (query parameters, headers, form fields)."""
    text = st.column_config.TextColumn
    return params(
        table(name, rows, ["name", "value"], {"name": text("Name"), "value": text("Value")})
    )


def params(rows: list[dict]) -> list[dict]:
    return [
        {"name": r.get("name") or "", "value": "" if r.get("value") is None else str(r["value"])}
        for r in rows
    ]


# --- actions on a saved job ---------------------------------------------------------------------


if current is not None:
    st.caption(f"{current.status} · {current.schedule.describe()} · id `{current.id}`")

    def deleted() -> None:
        drafts.pop(current.id, None)
        state["jb_pick_next"] = NEW

    bar = config_actions(store, "jobs", current, "jb", on_deleted=deleted)
    if bar.button("Clone", key="jb_clone"):
        copy = store.clone("jobs", current.id, source="studio")
        flash("jb", f"Cloned into {copy.name!r} (disabled until you activate it).")
        state["jb_pick_next"] = copy.name
        st.rerun()

# One section drawn at a time, not st.tabs: tabs draw every section on every rerun, and the
# browser then redraws all of them each time the live preview changes. What is typed in a
# section that is not drawn lives on in the draft.
sections = SECTIONS[draft["kind"]]
if state.get("jb_section") not in sections:
    last = state.get("jb_section_last")
    state["jb_section"] = last if last in sections else sections[0]
section = st.segmented_control("Section", sections, key="jb_section", label_visibility="collapsed")
state["jb_section_last"] = section

# --- basics -------------------------------------------------------------------------------------

if section == "Basics":
    if current is None:
        kind = st.radio(
            "Import from",
            ["api", "file"],
            horizontal=True,
            key=seeded(key("kind"), draft["kind"]),
            format_func={"api": "API calls", "file": "CSV files on a file server"}.get,
        )
        if kind != draft["kind"]:
            drafts[jid] = new_draft(kind) | {"name": draft["name"], "entity": draft["entity"]}
            forget(f"jb.{jid}.connection")
            st.rerun()
    job_conns = [c for c in connections if c.kind == CONN_KIND[draft["kind"]]]
    left, right = st.columns(2)
    draft["name"] = left.text_input("Job name", key=seeded(key("name"), draft["name"]))
    choices = [c.id for c in job_conns if c.status == "active" or c.id == draft["connection_id"]]
    if not choices:
        what = "API connection" if draft["kind"] == "api" else "file server connection"
        right.warning(f"No active {what} yet: create one on the Connections page.")
    else:
        if draft["connection_id"] not in choices:
            draft["connection_id"] = choices[0]
        draft["connection_id"] = right.selectbox(
            "Connection",
            choices,
            key=seeded(key("connection"), draft["connection_id"]),
            format_func=lambda cid: (
                conn_names[cid]
                + (
                    ""
                    if any(c.id == cid and c.status == "active" for c in job_conns)
                    else " (disabled)"
                )
            ),
        )
    left, right = st.columns(2)
    draft["entity"] = left.selectbox(
        "Target entity", list(entities), key=seeded(key("entity"), draft["entity"])
    )
    draft["external_key"] = right.text_input(
        "External key",
        key=seeded(key("external_key"), draft["external_key"]),
        help="A stable key other systems use to start this job over the REST API.",
    )

    st.markdown("**Schedule** (UTC)")
    sched = draft["schedule"]
    cols = st.columns(4)
    sched["type"] = cols[0].selectbox(
        "Frequency",
        list(FREQUENCIES),
        format_func=FREQUENCIES.get,
        key=seeded(key("s", "type"), sched.get("type", "manual")),
    )
    kind = sched["type"]
    modes = {
        "hourly": {"interval": "Every X hours and Y minutes", "at": "At a given hour"},
        "daily": {"interval": "Every X days", "weekdays": "Every weekday"},
        "monthly": {
            "day": "Day X of the month",
            "last_day": "Last day of the month",
            "last_weekday": "Last weekday of the month",
        },
    }.get(kind)
    if modes:
        mode = sched.get("mode") if sched.get("mode") in modes else next(iter(modes))
        sched["mode"] = cols[1].radio(
            "Option", list(modes), format_func=modes.get, key=seeded(key("s", kind, "mode"), mode)
        )
    else:
        sched["mode"] = DEFAULT_MODE[kind]
    mode = sched["mode"]
    if kind == "minutes" or (kind in ("hourly", "daily") and mode == "interval"):
        unit = {"minutes": "minutes", "hourly": "hours", "daily": "days"}[kind]
        sched["every"] = cols[2].number_input(
            f"Every (… {unit})", 1, 10_000, key=seeded(key("s", "every"), sched.get("every", 1))
        )
    if kind == "hourly" and mode == "interval":
        sched["every_minutes"] = cols[3].number_input(
            "And minutes",
            0,
            59,
            key=seeded(key("s", "every_minutes"), sched.get("every_minutes", 0)),
        )
    if kind == "monthly" and mode == "day":
        sched["day"] = cols[2].number_input(
            "Day", 1, 31, key=seeded(key("s", "day"), sched.get("day", 1))
        )
    if kind == "weekly":
        sched["weekdays"] = cols[1].multiselect(
            "Days", WEEKDAYS, key=seeded(key("s", "weekdays"), sched.get("weekdays", []))
        )
    if kind in ("daily", "weekly", "monthly") or (kind == "hourly" and mode == "at"):
        sched["at"] = cols[3].text_input(
            "At (HH:MM, UTC)", key=seeded(key("s", "at"), sched.get("at", "00:00"))
        )
    if kind == "cron":
        sched["cron"] = cols[1].text_input(
            "Cron expression (UTC)",
            key=seeded(key("s", "cron"), sched.get("cron", "")),
            placeholder="0 6 * * 1-5",
        )
    try:
        parsed = Schedule.model_validate({k: v for k, v in sched.items() if v is not None})
        anchor = parsed.anchor or (current and current.created_at) or datetime.now(UTC)
        upcoming = next_runs(parsed, anchor, datetime.now(UTC), 5)
        st.caption(
            "Runs "
            + parsed.describe()
            + (
                ". Next: " + ", ".join(m.strftime("%a %d %b %H:%M") for m in upcoming)
                if upcoming
                else ""
            )
        )
    except ValueError as e:
        st.error(str(e).split("\n", 1)[1].split(" [type=")[0].replace("Value error, ", ""))

    dest = draft.setdefault("destination", {"enabled": False})
    with st.expander(
        "Also write the rows as a CSV file to a file server", expanded=bool(dest.get("enabled"))
    ):
        dest["enabled"] = st.checkbox(
            "Write a CSV file", key=seeded(key("d", "enabled"), dest.get("enabled", False))
        )
        servers = [c for c in connections if c.kind == "file_server"]
        if dest["enabled"] and not servers:
            st.warning("No file server connection yet: create one on the Connections page.")
        elif dest["enabled"]:
            ids = [c.id for c in servers]
            c = st.columns(3)
            dest["connection_id"] = c[0].selectbox(
                "Destination connection",
                ids,
                format_func=conn_names.get,
                key=seeded(key("d", "connection"), dest.get("connection_id") or ids[0]),
            )
            dest["folder"] = c[1].text_input(
                "Folder", key=seeded(key("d", "folder"), dest.get("folder", ""))
            )
            dest["file_name"] = c[2].text_input(
                "File name",
                key=seeded(key("d", "file_name"), dest.get("file_name", "file-{{timestamp}}.csv")),
                help="{{timestamp}}, {{date}}, {{job}} and {{run_id}} are filled in",
            )
            c = st.columns(3)
            dest["column_delimiter"] = c[0].selectbox(
                "Column delimiter",
                list(DELIMITERS),
                format_func=DELIMITERS.get,
                key=seeded(key("d", "column_delimiter"), dest.get("column_delimiter", ",")),
            )
            dest["row_delimiter"] = c[1].selectbox(
                "Row delimiter",
                ["\n", "\r\n"],
                format_func={"\n": "LF (\\n)", "\r\n": "CRLF (\\r\\n)"}.get,
                key=seeded(key("d", "row_delimiter"), dest.get("row_delimiter", "\n")),
            )
            for n, (name, label, default) in enumerate(
                [
                    ("include_header", "Include header", True),
                    ("wrap_with_quotes", "Wrap with quotes", False),
                    ("replace_tab_with_space", "Replace tab with space", False),
                    ("replace_newline_with_space", "Replace newline with space", False),
                    ("neutralize_formulas", "Neutralise formulas (= + - @)", True),
                ]
            ):
                dest[name] = st.columns(2)[n % 2].checkbox(
                    label, key=seeded(key("d", name), dest.get(name, default))
                )

# --- files and test (file jobs) -------------------------------------------------------------------


def browse(folder: str) -> None:
    """The server's folders and files, to pick a path from."""
    try:
        conn = store.get("connections", draft["connection_id"], reveal=True)
        with connect(conn, store.home, timeout=15) as client:
            entries = client.list(folder)
    except StudioError as e:
        st.error(str(e))
        return
    state[key("listing")] = [
        {
            "name": e.name + ("/" if e.is_dir else ""),
            "path": e.path,
            "size": e.size,
            "modified": e.modified,
        }
        for e in entries
    ]


if section == "Files and test":
    src, csvs = draft.setdefault("source", {"mode": "path"}), draft.setdefault("csv", {})
    src["mode"] = st.radio(
        "Files",
        ["path", "bulk"],
        horizontal=True,
        key=seeded(key("f", "mode"), src.get("mode", "path")),
        format_func={"path": "One file path", "bulk": "Bulk: every file of an inbound folder"}.get,
    )
    if src["mode"] == "path":
        src["path"] = st.text_input(
            "File path",
            key=seeded(key("f", "path"), src.get("path", "")),
            placeholder="folder/sub-folder/import-products.csv",
        )
    else:
        c = st.columns(4)
        for n, (name, label, default) in enumerate(
            [
                ("inbound", "Inbound folder", ""),
                ("pattern", "File name pattern", "*.csv"),
                ("outbound", "Outbound folder", ""),
                ("error_folder", "Error folder (optional)", ""),
            ]
        ):
            src[name] = c[n].text_input(label, key=seeded(key("f", name), src.get(name, default)))
    with st.expander("Browse the server"):
        bar = st.container(horizontal=True, vertical_alignment="bottom")
        folder = bar.text_input("Folder", key=key("f", "browse"), placeholder="/ (the root)")
        if bar.button("List", key=key("f", "list")):
            browse(folder or "")
        listing = state.get(key("listing"))
        if listing:
            st.dataframe(pd.DataFrame(listing), hide_index=True, width="stretch")
            picked = st.selectbox("Use", [e["path"] for e in listing], key=key("f", "pick"))
            use = st.container(horizontal=True)
            if use.button("As the file path", key=key("f", "use_path")):
                src["mode"], src["path"] = "path", picked
                forget(f"jb.{jid}.f.")
                st.rerun()
            if use.button("As the inbound folder", key=key("f", "use_inbound")):
                src["mode"], src["inbound"] = "bulk", picked
                forget(f"jb.{jid}.f.")
                st.rerun()
    st.markdown("**CSV**")
    c = st.columns(4)
    csvs["delimiter"] = c[0].selectbox(
        "Delimiter",
        list(DELIMITERS),
        format_func=DELIMITERS.get,
        key=seeded(key("f", "delimiter"), csvs.get("delimiter", ",")),
    )
    encodings = {
        "utf-8": "UTF-8",
        "utf-8-sig": "UTF-8 with BOM",
        "latin-1": "Latin-1",
        "cp1252": "Windows-1252",
    }
    csvs["encoding"] = c[1].selectbox(
        "Encoding",
        list(encodings),
        format_func=encodings.get,
        key=seeded(key("f", "encoding"), csvs.get("encoding", "utf-8")),
    )
    csvs["quote_char"] = c[2].text_input(
        "Quote character", max_chars=1, key=seeded(key("f", "quote"), csvs.get("quote_char", '"'))
    )
    csvs["header_row"] = c[3].checkbox(
        "First row is a header", key=seeded(key("f", "header"), csvs.get("header_row", True))
    )
    limits = state.setdefault("jb_limits", {}).setdefault(jid, {"pages": 5, "records": 500})
    limits["records"] = st.number_input(
        "Preview: max rows", 1, 100_000, key=seeded(key("limit_records"), limits["records"])
    )
    if st.button("Test", key=key("f", "test"), type="primary"):
        with st.spinner("Reading the first rows…"):
            try:
                job = draft_job(draft)
                conn = store.get("connections", job.connection_id, reveal=True)
            except ConfigError as e:
                for m in e.messages:
                    st.error(m)
            except StudioError as e:
                st.error(str(e))
            else:
                trace = preview_file(job, conn, store.home, max_records=limits["records"])
                tests[jid] = {
                    "call": 1,
                    "at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
                    "trace": trace.as_dict(),
                }
    test = tests.get(jid)
    if test:
        trace = test["trace"]
        st.markdown(f"**Last test** (at {test['at']}): {len(trace['records'])} rows read")
        if trace["error"]:
            st.error(trace["error"])
        suggested = trace["hints"].get("delimiter")
        if suggested and suggested != csvs["delimiter"]:
            st.warning(f"The first lines suggest the delimiter {DELIMITERS[suggested]}.")

            def use_delimiter(value: str = suggested) -> None:
                # A callback runs before the widgets are drawn, so it may set the widget too.
                csvs["delimiter"] = state[key("f", "delimiter")] = value

            st.button(
                f"Use {DELIMITERS[suggested]}",
                key=key("f", "use_delimiter"),
                on_click=use_delimiter,
            )
        for stop in trace["stopped"]:
            st.warning(stop[0].upper() + stop[1:])
        if trace["records"]:
            st.dataframe(pd.DataFrame(trace["records"][:SHOWN]), width="stretch", height=260)
        if trace["log"]:
            st.code("\n".join(trace["log"]))

# --- calls and tests ----------------------------------------------------------------------------


def number(col, label: str, uid: str, b: dict, name: str, low, high, default):
    """A number field of a behavior, seeded from the draft (floats stay floats)."""
    value = b.get(name, default)
    return col.number_input(
        label, low, high, key=seeded(key("c", uid, "b", name), type(low)(value))
    )


def behavior_fields(b: dict, uid: str) -> dict:
    """Only the chosen behavior's own fields."""
    t = b["type"]
    if t == "retry":
        c = st.columns(3)
        b["max_attempts"] = number(c[0], "Max attempts", uid, b, "max_attempts", 1, 10_000, 10)
        b["interval"] = number(c[1], "Interval (seconds)", uid, b, "interval", 0.0, 86_400.0, 5.0)
        b["expected_status"] = number(
            c[2], "Expected status", uid, b, "expected_status", 100, 599, 200
        )
        c = st.columns(2)
        b["condition_key"] = c[0].text_input(
            "Condition key (JSONPath)",
            key=seeded(key("c", uid, "b", "condition_key"), b.get("condition_key", "")),
            placeholder="$.status",
        )
        b["condition_value"] = c[1].text_input(
            "Condition value",
            key=seeded(key("c", uid, "b", "condition_value"), b.get("condition_value", "")),
            placeholder="AVAILABLE",
        )
    elif t == "download":
        c = st.columns(3)
        b["url_source"] = c[0].text_input(
            "URL from (variable or JSONPath)",
            key=seeded(key("c", uid, "b", "url_source"), b.get("url_source", "")),
            help="A variable of an earlier call (fileUrl), or a JSONPath into the previous "
            "call's response ($.file.url). Empty: this call's path.",
        )
        formats = ["csv", "json", "jsonl", "zip"]
        b["format"] = c[1].selectbox(
            "File format", formats, key=seeded(key("c", uid, "b", "format"), b.get("format", "csv"))
        )
        b["encoding"] = c[2].selectbox(
            "Encoding",
            ["utf-8", "utf-8-sig", "latin-1", "cp1252"],
            key=seeded(key("c", uid, "b", "encoding"), b.get("encoding", "utf-8")),
        )
        c = st.columns(3)
        delimiters = {",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
        b["delimiter"] = c[0].selectbox(
            "CSV delimiter",
            list(delimiters),
            format_func=delimiters.get,
            key=seeded(key("c", uid, "b", "delimiter"), b.get("delimiter", ",")),
        )
        b["header_row"] = c[1].checkbox(
            "First row is a header",
            key=seeded(key("c", uid, "b", "header_row"), b.get("header_row", True)),
        )
    elif t == "pagination":
        styles = {
            "page": "Page number",
            "offset": "Offset / limit",
            "cursor": "Cursor",
            "next_link": "Next link",
        }
        c = st.columns(3)
        b["style"] = c[0].selectbox(
            "Style",
            list(styles),
            format_func=styles.get,
            key=seeded(key("c", uid, "b", "style"), b.get("style", "page")),
        )
        b["page_size"] = number(c[1], "Page size", uid, b, "page_size", 1, 100_000, 100)
        b["max_pages"] = number(c[2], "Max pages", uid, b, "max_pages", 1, 1_000_000, 1000)
        c = st.columns(3)
        fields = {
            "page": [
                ("page_param", "Page parameter", "page"),
                ("size_param", "Page size parameter", "size"),
            ],
            "offset": [
                ("offset_param", "Offset parameter", "offset"),
                ("limit_param", "Limit parameter", "limit"),
            ],
            "cursor": [
                ("cursor_param", "Cursor parameter", "cursor"),
                ("cursor_path", "Next cursor (JSONPath)", ""),
                ("cursor_header", "…or next cursor header", ""),
            ],
            "next_link": [("next_link_path", "Next link (JSONPath; empty: Link header)", "")],
        }[b["style"]]
        if b["style"] == "page":
            b["first_page"] = number(c[2], "First page", uid, b, "first_page", 0, 1000, 1)
        for n, (name, label, default) in enumerate(fields):
            b[name] = c[n % 2 if b["style"] == "page" else n].text_input(
                label, key=seeded(key("c", uid, "b", name), b.get(name, default))
            )
        c = st.columns(3)
        b["total_pages_path"] = c[0].text_input(
            "Stop at total pages (JSONPath)",
            key=seeded(key("c", uid, "b", "total_pages_path"), b.get("total_pages_path", "")),
        )
        b["total_records_path"] = c[1].text_input(
            "…or total records (JSONPath)",
            key=seeded(key("c", uid, "b", "total_records_path"), b.get("total_records_path", "")),
        )
        b["stop_on_short_page"] = c[2].checkbox(
            "Stop on a short page",
            key=seeded(key("c", uid, "b", "stop_on_short_page"), b.get("stop_on_short_page", True)),
        )
    return b


def run_test(up_to: int) -> None:
    limits = state.setdefault("jb_limits", {}).setdefault(jid, {"pages": 5, "records": 500})
    with st.status(f"Testing call{'s 1–' if up_to > 1 else ' '}{up_to}…", expanded=True) as status:
        try:
            job = draft_job(draft, up_to_call=up_to)
            conn = store.get("connections", job.connection_id, reveal=True)
        except ConfigError as e:
            status.update(label="Not ready to test", state="error")
            for m in e.messages:
                st.error(m)
            return
        except StudioError as e:
            status.update(label="Not ready to test", state="error")
            st.error(str(e))
            return

        def progress(event: dict) -> None:
            if event["kind"] == "exchange":
                ex = event["exchange"]
                status.write(
                    f"{ex.label}: {ex.method} {ex.url} → {ex.status or ex.error} "
                    f"({ex.elapsed_ms:.0f} ms)"
                )

        trace = preview(
            job,
            conn,
            up_to_call=up_to,
            max_pages=limits["pages"],
            max_records=limits["records"],
            on_event=progress,
        )
        tests[jid] = {
            "call": up_to,
            "at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
            "trace": trace.as_dict(),
        }
        label = f"{len(trace.records)} records from call {up_to} in {trace.elapsed_ms:.0f} ms"
        status.update(
            label=f"Failed: {trace.error}" if trace.error else label,
            state="error" if trace.error else "complete",
            expanded=False,
        )


def head_lines(headers: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in headers.items())


def pretty(text: str) -> str:
    """JSON indented when it parses (an excerpt cut at 2,000 characters does not)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def show_test() -> None:
    test = tests.get(jid)
    if not test:
        return
    trace = test["trace"]
    st.markdown(
        f"**Last test** (calls 1–{test['call']}, at {test['at']}): "
        f"{len(trace['exchanges'])} requests, {len(trace['records'])} records"
    )
    if trace["error"]:
        st.error(trace["error"])
    for stop in trace["stopped"]:
        st.warning(stop[0].upper() + stop[1:])
    exchanges = trace["exchanges"]
    if exchanges:
        # One table of every request, and the details of one at a time: drawing the details of
        # every page's request made each keystroke on this page redraw dozens of code blocks.
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "#": n,
                        "Call": ex["label"],
                        "Method": ex["method"],
                        "URL": ex["url"],
                        "Status": ex["status"] if ex["status"] is not None else "failed",
                        "Time (ms)": round(ex["elapsed_ms"]),
                        "Size (B)": ex["size"],
                        "Note": ex["note"]
                        or ("retried: " + ", ".join(ex["retries"]) if ex["retries"] else ""),
                    }
                    for n, ex in enumerate(exchanges, 1)
                ]
            ),
            hide_index=True,
            width="stretch",
            key=key("exchanges"),
        )
        failed = next(
            (n for n, ex in enumerate(exchanges) if ex["error"] or (ex["status"] or 0) >= 400),
            len(exchanges) - 1,
        )
        n = st.selectbox(
            "Request details",
            range(len(exchanges)),
            index=failed,
            key=key("exchange_pick"),
            format_func=lambda i: (
                f"#{i + 1} {exchanges[i]['label']} · {exchanges[i]['method']} {exchanges[i]['url']}"
            ),
        )
        ex = exchanges[min(n or 0, len(exchanges) - 1)]
        req, resp = st.tabs(["Request", "Response"])
        req.code(head_lines(ex["request_headers"]), language="http")
        if ex["request_body"]:
            req.code(pretty(ex["request_body"]), language="json")
        if ex["error"]:
            resp.error(ex["error"])
        status = ex["status"] if ex["status"] is not None else "no answer"
        resp.caption(
            f"{status} {ex['reason']} · {ex['elapsed_ms']:.0f} ms · {ex['size']:,} B"
            + (f" · retried after {', '.join(ex['retries'])}" if ex["retries"] else "")
        )
        resp.code(head_lines(ex["response_headers"]), language="http")
        resp.code(
            pretty(ex["body_excerpt"]) or "(no body kept: a download streams to disk)",
            language="json",
        )
        if ex["variables"]:
            st.markdown("**Variables extracted**")
            st.code(json.dumps(ex["variables"], indent=2, ensure_ascii=False), language="json")
    if trace["log"]:
        with st.expander("Log"):
            st.code("\n".join(trace["log"]))


if section == "Calls and tests":
    limits = state.setdefault("jb_limits", {}).setdefault(jid, {"pages": 5, "records": 500})
    c = st.columns(4)
    limits["pages"] = c[0].number_input(
        "Preview: max pages", 1, 1000, key=seeded(key("limit_pages"), limits["pages"])
    )
    limits["records"] = c[1].number_input(
        "Preview: max records", 1, 100_000, key=seeded(key("limit_records"), limits["records"])
    )
    defined = list(BUILTINS)
    for i, (call, uid) in enumerate(zip(draft["calls"], uids, strict=True)):
        box = st.container(border=True)
        head = box.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**Call {i + 1}**")
        if head.button("↑", key=key("c", uid, "up"), disabled=i == 0, help="Move up"):
            draft["calls"][i - 1], draft["calls"][i] = draft["calls"][i], draft["calls"][i - 1]
            uids[i - 1], uids[i] = uids[i], uids[i - 1]
            st.rerun()
        if head.button(
            "↓", key=key("c", uid, "down"), disabled=i == len(uids) - 1, help="Move down"
        ):
            draft["calls"][i + 1], draft["calls"][i] = draft["calls"][i], draft["calls"][i + 1]
            uids[i + 1], uids[i] = uids[i], uids[i + 1]
            st.rerun()
        if head.button(
            "✕", key=key("c", uid, "remove"), disabled=len(uids) == 1, help="Remove this call"
        ):
            del draft["calls"][i]
            del uids[i]
            st.rerun()
        with box:
            cols = st.columns([1, 4, 2])
            call["method"] = cols[0].selectbox(
                "Method", METHODS, key=seeded(key("c", uid, "method"), call.get("method", "GET"))
            )
            call["path"] = cols[1].text_input(
                "Path",
                key=seeded(key("c", uid, "path"), call.get("path", "")),
                placeholder="/products or /products/{productId} or https://…",
            )
            call["name"] = cols[2].text_input(
                "Label", key=seeded(key("c", uid, "name"), call.get("name", ""))
            )
            query_t, headers_t, body_t, vars_t, behavior_t = st.tabs(
                ["Query", "Headers", "Body", "Variables", "Behavior"]
            )
            text_col = st.column_config.TextColumn
            with query_t:
                call["query"] = param_table(f"c.{uid}.query", call.get("query", []))
            with headers_t:
                call["headers"] = param_table(f"c.{uid}.headers", call.get("headers", []))
            with body_t:
                body = call.setdefault("body", {"type": "none"})
                body["type"] = st.radio(
                    "Body",
                    ["none", "json", "form", "raw"],
                    horizontal=True,
                    key=seeded(key("c", uid, "body_type"), body.get("type", "none")),
                )
                if body["type"] in ("json", "raw"):
                    body["content"] = st.text_area(
                        "Content",
                        key=seeded(key("c", uid, "body"), body.get("content", "")),
                        placeholder='{"since": "{last_success_at}"}',
                    )
                elif body["type"] == "form":
                    body["fields"] = param_table(f"c.{uid}.form", body.get("fields", []))
            with vars_t:
                st.caption(
                    f"Use them in later calls as {{name}}. Available here: "
                    f"{', '.join('{' + d + '}' for d in defined)}"
                )
                call["variables"] = [
                    {"name": r.get("name") or "", "path": r.get("path") or ""}
                    | ({"secret": bool(r["secret"])} if r.get("secret") in (True, False) else {})
                    for r in table(
                        f"c.{uid}.variables",
                        call.get("variables", []),
                        ["name", "path", "secret"],
                        {
                            "name": text_col("Name"),
                            "path": text_col("JSONPath"),
                            "secret": st.column_config.CheckboxColumn(
                                "Secret",
                                help="Mask the value in traces and logs (a session token). "
                                "Ticked by default for names like token or session.",
                            ),
                        },
                    )
                ]
            with behavior_t:
                b = call.setdefault("behavior", {"type": "none"})
                b["type"] = st.selectbox(
                    "Behavior",
                    list(BEHAVIORS),
                    format_func=BEHAVIORS.get,
                    key=seeded(key("c", uid, "behavior"), b.get("type", "none")),
                )
                call["behavior"] = {
                    k: v
                    for k, v in behavior_fields(b, uid).items()
                    if k == "type" or k in BEHAVIOR_FIELDS[b["type"]]
                }
            defined += [v["name"] for v in call["variables"] if v["name"]]
            if st.button("Test up to here", key=key("c", uid, "test"), type="primary"):
                run_test(i + 1)

    bar = st.container(horizontal=True)
    if bar.button("Add a call", key=key("add_call")):
        draft["calls"].append({"method": "GET", "path": ""})
        uids.append(uuid.uuid4().hex[:8])
        st.rerun()
    with st.expander("Import a call from cURL"):
        command = st.text_area(
            "cURL command",
            key=key("curl"),
            placeholder="curl -H 'Accept: application/json' https://…",
        )
        if st.button("Add as a call", key=key("curl_add")):
            base = next((c.base_url for c in api_connections if c.id == draft["connection_id"]), "")
            try:
                parsed = parse_curl(command, base_url=base)
            except StudioError as e:
                st.error(str(e))
            else:
                draft["calls"].append(parsed.call)
                uids.append(uuid.uuid4().hex[:8])
                state[key("curl_secrets")] = parsed.secret_headers
                st.rerun()
        pending = state.get(key("curl_secrets"))
        if pending:
            names_ = ", ".join(h["name"] for h in pending)
            st.warning(
                f"The command sends credentials ({names_}). They were left out of the "
                "call; move them into the connection, where they are encrypted?"
            )
            if st.button("Move into the connection", key=key("curl_move")):

                def add_headers(conn):
                    kept = [
                        h
                        for h in conn.headers
                        if h.name.lower() not in {p["name"].lower() for p in pending}
                    ]
                    return conn.model_copy(
                        update={
                            "headers": kept
                            + [
                                Header(name=h["name"], value=h["value"], secret=True)
                                for h in pending
                            ]
                        }
                    )

                store.modify("connections", draft["connection_id"], add_headers, source="studio")
                state.pop(key("curl_secrets"))
                flash(
                    "jb",
                    f"Moved {names_} into connection "
                    f"{conn_names.get(draft['connection_id'])!r} as secret headers.",
                )
                st.rerun()
    show_test()


# --- records and mapping (live, on the last test's cached responses) ----------------------------


def mapping_rows(rows: list[dict]) -> tuple[list[FieldMap], list[str]]:
    """The rows that make valid fields, and a message for each that does not."""
    fields, problems = [], []
    for n, row in enumerate(rows, 1):
        data = {k: v for k, v in row.items() if v not in (None, "")}
        data.setdefault("type", "string")
        data["required"] = bool(row.get("required"))
        try:
            fields.append(FieldMap.model_validate(data))
        except ValueError as e:
            reason = str(e).split("\n", 2)[-1].split(" [type=")[0].replace("Value error, ", "")
            problems.append(f"Mapping row {n}: {reason.strip()}")
    return fields, problems


@st.fragment
def records_and_mapping() -> None:
    test = tests.get(jid)
    spec = entities[draft["entity"]]
    api = draft["kind"] == "api"
    finder = (
        "$"
        if not api
        else st.text_input(
            "Content finder (JSONPath)",
            key=seeded(key("content_finder"), draft["content_finder"]),
            help="Where the records are in each response of the last call, "
            "e.g. $.items or $.data.results[*]",
        )
    )
    if api:
        draft["content_finder"] = finder
    records: list = []
    if not test:
        st.info("Test a call (in Calls and tests) to see its records here.")
    else:
        trace = test["trace"]
        if trace["documents"]:
            records, error, near = find_records(trace["documents"], finder or "$")
            if error:
                st.error(error)
            elif not records:
                st.warning(f"No records at {finder}. Paths that match: " + ", ".join(near))
        else:
            records = trace["records"]
            if records and api:
                st.caption(
                    "Rows of a downloaded file are the records; the content finder "
                    "does not apply to them."
                )
        origin = f"the test of call {test['call']}" if api else "the test of the file"
        st.markdown(
            f"**{len(records):,} records** from {origin}"
            + (f" (showing {SHOWN})" if len(records) > SHOWN else "")
        )
        if records:
            st.dataframe(
                pd.json_normalize(records[:SHOWN], max_level=2),
                width="stretch",
                height=220,
                key=key("records_table"),
            )

    st.subheader("Mapping")
    rows = draft["mapping"]
    required_slot = st.empty()  # filled once the mapping below is known
    tools = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    paths = profile(records) if records else []
    picked = tools[0].selectbox(
        "Field browser",
        [p.path for p in paths],
        index=None,
        key=key("browse"),
        placeholder="a field of the records…",
        format_func=lambda p: next(
            f"{i.path} · {i.type} · {', '.join(map(repr, i.samples))}"[:90]
            for i in paths
            if i.path == p
        ),
    )
    target = tools[1].selectbox(
        "Generate", list(spec.fields), index=None, key=key("browse_to"), placeholder="entity field…"
    )
    if tools[2].button("Use", key=key("browse_use"), disabled=not (picked and target)):
        kept = [r for r in rows if r.get("generate") != target]
        rows = [
            *kept,
            {
                "extract": picked,
                "generate": target,
                "type": spec.fields[target].type,
                "required": False,
            },
        ]
        draft["mapping"] = rows
        replace_table("mapping", rows)  # the editor below starts from these rows
    if tools[3].button("Suggest mapping", key=key("suggest"), disabled=not records):
        have = {r.get("generate") for r in rows}
        extra = [f.model_dump() for f in suggest(records, spec) if f.generate not in have]
        rows = [*rows, *extra]
        draft["mapping"] = rows
        replace_table("mapping", rows)
        st.toast(f"Suggested {len(extra)} field(s)")
    column = st.column_config
    rows = table(
        "mapping",
        rows,
        ["extract", "generate", "type", "format", "default", "required"],
        {
            "extract": column.TextColumn(
                "Extract",
                help="JSONPath ($.price.amount), a column or "
                'dotted path (price.amount), or a quoted literal ("EUR")',
            ),
            "generate": column.SelectboxColumn("Generate", options=list(spec.fields)),
            "type": column.SelectboxColumn("Type", options=TYPES),
            "format": column.TextColumn("Input format", help="For dates: %d/%m/%Y; empty: ISO"),
            "default": column.TextColumn("Default"),
            "required": column.CheckboxColumn("Required"),
        },
    )
    draft["mapping"] = [
        {
            "extract": r.get("extract") or "",
            "generate": r["generate"],
            "type": r.get("type") or "string",
            "format": r.get("format") or "",
            "default": r.get("default") or None,
            "required": bool(r.get("required")),
        }
        for r in rows
        if r.get("generate")
    ]
    missing = unmapped_required(
        [FieldMap(extract=r["extract"], generate=r["generate"]) for r in draft["mapping"]], spec
    )
    required_slot.caption(
        f"Required fields of {spec.name}: "
        + ", ".join(f"{f} {'⚠️ not mapped' if f in missing else '✓'}" for f in spec.required)
    )
    fields, problems = mapping_rows(draft["mapping"])
    for p in problems:
        st.error(p)
    if records and fields:
        batch = Mapper(fields, spec).map(records)
        st.markdown(f"**{len(batch.rows):,} rows**, **{len(batch.rejects):,} rejects**")
        st.dataframe(
            pd.DataFrame(batch.rows[:SHOWN]), width="stretch", height=220, key=key("rows_table")
        )
        if batch.rejects:
            rejects = pd.DataFrame([r.as_dict() for r in batch.rejects[:SHOWN]])
            st.dataframe(
                rejects.style.set_properties(**{"background-color": "#fde2e1"}),
                width="stretch",
                key=key("rejects_table"),
                hide_index=True,
                column_config={"record": "Row", "field": "Field", "reason": "Why"},
            )


if section == "Records and mapping":
    records_and_mapping()

# --- save -----------------------------------------------------------------------------------------

if st.button("Save job" if current else "Create job", type="primary", key="jb_save"):
    data = dict(draft)
    try:
        if current is None:
            saved = store.create("jobs", data, source="studio")
        else:
            saved = store.update("jobs", current.id, data, source="studio")
    except ConfigError as e:
        for m in e.messages:
            st.error(m)
    except StudioError as e:
        st.error(str(e))
    else:
        # Reload from the store: what is shown is exactly what was saved.
        drafts.pop(jid, None)
        forget(f"jb.{jid}.")
        state.pop(f"jb_uids.{jid}", None)
        if jid == "new":
            tests[saved.id] = tests.pop("new", None) or tests.get(saved.id)
            state.setdefault("jb_limits", {})[saved.id] = state.get("jb_limits", {}).pop(
                "new", {"pages": 5, "records": 500}
            )
        flash("jb", f"Saved job {saved.name!r}.")
        state["jb_pick_next"] = saved.name
        st.rerun()
