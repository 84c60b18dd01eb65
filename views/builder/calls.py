"""The Calls and tests section of an API job: each call (method, path, query, headers, body,
variables, behavior), its order, a call pasted as cURL, and "Test up to here" with the test's
requests, one at a time."""

from __future__ import annotations

import streamlit as st

from studio.config.connections import Header
from studio.config.jobs import (
    BUILTINS,
    ApiJob,
    DownloadBehavior,
    NoBehavior,
    PaginationBehavior,
    RetryBehavior,
)
from studio.config.store import ConfigStore
from studio.curl import parse_curl
from studio.errors import StudioError
from views.builder.basics import DELIMITERS
from views.builder.draft import Draft
from views.builder.files import ENCODINGS
from views.builder.testpanel import not_ready, show_test, start_test, test_panel
from views.builder.widgets import field
from views.common import flash

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
BEHAVIORS = {
    "none": "None (one request)",
    "retry": "Retry (poll until a condition)",
    "download": "Download (a file)",
    "pagination": "Pagination",
}
MODELS = {
    m.model_fields["type"].default: m
    for m in (NoBehavior, RetryBehavior, DownloadBehavior, PaginationBehavior)
}
STYLES = {
    "page": "Page number",
    "offset": "Offset / limit",
    "cursor": "Cursor",
    "next_link": "Next link",
}
OPTIONS = {"delimiter": DELIMITERS, "encoding": ENCODINGS, "style": STYLES}
# Which fields a pagination style uses, besides the ones every style has.
STYLE_FIELDS = {
    "page": ["page_param", "size_param", "first_page"],
    "offset": ["offset_param", "limit_param"],
    "cursor": ["cursor_param", "cursor_path", "cursor_header"],
    "next_link": ["next_link_path"],
}
PAGING = ["page_size", "max_pages"]
STOPS = [
    "total_pages_path",
    "total_records_path",
    "records_path",
    "stop_when_empty_path",
    "stop_on_short_page",
]


def behavior_form(d: Draft, uid: str, b: dict, place: str) -> dict:
    """The chosen behavior's own fields, drawn from its model; returns only those."""
    model = MODELS[b["type"]]
    where = ("c", uid, "b")
    if model is PaginationBehavior:
        c = st.columns(3)
        style = field(d, c[0], model, "style", b, *where, options=STYLES, place=place)
        for col, name in zip(c[1:], PAGING, strict=True):
            field(d, col, model, name, b, *where, place=place)
        rows = [STYLE_FIELDS[style], STOPS[:3], STOPS[3:]]
    else:
        names = [n for n in model.model_fields if n != "type"]
        rows = [names[i : i + 3] for i in range(0, len(names), 3)]
    for row in rows:
        cols = st.columns(3)
        for col, name in zip(cols, row, strict=False):
            field(d, col, model, name, b, *where, options=OPTIONS.get(name), place=place)
    return {k: v for k, v in b.items() if k == "type" or k in model.model_fields}


def call_editor(d: Draft, store: ConfigStore, i: int, call: dict, uid: str, defined: list) -> None:
    """One call's box: order buttons, method, path, label, its tabs, and its test button."""
    draft, uids = d.data, d.uids
    box = st.container(border=True)
    head = box.container(horizontal=True, vertical_alignment="center")
    head.markdown(f"**Call {i + 1}**")
    if head.button("↑", key=d.key("c", uid, "up"), disabled=i == 0, help="Move up"):
        draft["calls"][i - 1], draft["calls"][i] = draft["calls"][i], draft["calls"][i - 1]
        uids[i - 1], uids[i] = uids[i], uids[i - 1]
        st.rerun()
    if head.button("↓", key=d.key("c", uid, "down"), disabled=i == len(uids) - 1, help="Move down"):
        draft["calls"][i + 1], draft["calls"][i] = draft["calls"][i], draft["calls"][i + 1]
        uids[i + 1], uids[i] = uids[i], uids[i + 1]
        st.rerun()
    if head.button(
        "✕", key=d.key("c", uid, "remove"), disabled=len(uids) == 1, help="Remove this call"
    ):
        del draft["calls"][i]
        del uids[i]
        st.rerun()
    with box:
        cols = st.columns([1, 4, 2])
        call["method"] = cols[0].selectbox(
            "Method", METHODS, key=d.seeded(d.key("c", uid, "method"), call.get("method", "GET"))
        )
        call["path"] = cols[1].text_input(
            "Path",
            key=d.seeded(d.key("c", uid, "path"), call.get("path", "")),
            placeholder="/products or /products/{productId} or https://…",
        )
        call["name"] = cols[2].text_input(
            "Label", key=d.seeded(d.key("c", uid, "name"), call.get("name", ""))
        )
        query_t, headers_t, body_t, vars_t, behavior_t = st.tabs(
            ["Query", "Headers", "Body", "Variables", "Behavior"]
        )
        with query_t:
            call["query"] = d.param_table(f"c.{uid}.query", call.get("query", []))
        with headers_t:
            call["headers"] = d.param_table(f"c.{uid}.headers", call.get("headers", []))
        with body_t:
            body_editor(d, uid, call)
        with vars_t:
            variables_editor(d, uid, call, defined)
        with behavior_t:
            b = call.setdefault("behavior", {"type": "none"})
            b["type"] = st.selectbox(
                "Behavior",
                list(BEHAVIORS),
                format_func=BEHAVIORS.get,
                key=d.seeded(d.key("c", uid, "behavior"), b.get("type", "none")),
            )
            call["behavior"] = behavior_form(d, uid, b, f"Call {i + 1} › Behavior")
        typed = bool(call.get("path"))
        for problem in d.problems_at(f"Call {i + 1}", typed=typed):
            if not problem.startswith("Behavior › "):  # those are under their fields
                st.caption(f":red[{problem}]")
        testing = d.state.get(d.key("task")) is not None
        if st.button(
            "Test up to here",
            key=d.key("c", uid, "test"),
            type="primary",
            disabled=testing,
            help="A test is running: wait for it or cancel it" if testing else None,
        ):
            start_test(d, store, i + 1)
        not_ready(d, i + 1)


def body_editor(d: Draft, uid: str, call: dict) -> None:
    body = call.setdefault("body", {"type": "none"})
    body["type"] = st.radio(
        "Body",
        ["none", "json", "form", "raw"],
        horizontal=True,
        key=d.seeded(d.key("c", uid, "body_type"), body.get("type", "none")),
    )
    if body["type"] in ("json", "raw"):
        body["content"] = st.text_area(
            "Content",
            key=d.seeded(d.key("c", uid, "body"), body.get("content", "")),
            placeholder='{"since": "{last_success_at}"}',
        )
    elif body["type"] == "form":
        body["fields"] = d.param_table(f"c.{uid}.form", body.get("fields", []))


def variables_editor(d: Draft, uid: str, call: dict, defined: list) -> None:
    text_col = st.column_config.TextColumn
    st.caption(
        f"Use them in later calls as {{name}}. Available here: "
        f"{', '.join('{' + v + '}' for v in defined)}"
    )
    call["variables"] = [
        {"name": r.get("name") or "", "path": r.get("path") or ""}
        | ({"secret": bool(r["secret"])} if r.get("secret") in (True, False) else {})
        for r in d.table(
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


def calls_and_tests(d: Draft, store: ConfigStore, conn_names: dict) -> None:
    """The calls on the left, the test panel on the right, the last test's requests below."""
    left, right = st.columns([3, 2], gap="medium")
    with left:
        limits = d.limits
        c = st.columns(3)
        limits["pages"] = c[0].number_input(
            "Preview: max pages", 1, 1000, key=d.seeded(d.key("limit_pages"), limits["pages"])
        )
        limits["records"] = c[1].number_input(
            "Preview: max records",
            1,
            100_000,
            key=d.seeded(d.key("limit_records"), limits["records"]),
        )
        field(d, c[2], ApiJob, "max_fanout", d.data)
        defined = list(BUILTINS)
        for i, (call, uid) in enumerate(zip(d.data["calls"], d.uids, strict=True)):
            call_editor(d, store, i, call, uid, defined)
            defined += [v["name"] for v in call["variables"] if v["name"]]
        if st.button("Add a call", key=d.key("add_call")):
            d.data["calls"].append({"method": "GET", "path": ""})
            d.uids.append(d.new_uid())
            st.rerun()
        curl_import(d, store, conn_names)
    with right:
        test_panel(d)
    show_test(d)


def blank_call(call: dict) -> bool:
    """A call nothing was typed in yet (a pasted cURL takes its place)."""
    return not (
        call.get("path")
        or call.get("query")
        or call.get("headers")
        or call.get("variables")
        or (call.get("body") or {}).get("type", "none") != "none"
        or (call.get("behavior") or {}).get("type", "none") != "none"
    )


def curl_import(d: Draft, store: ConfigStore, conn_names: dict) -> None:
    draft = d.data
    with st.expander("Import a call from cURL"):
        command = st.text_area(
            "cURL command",
            key=d.key("curl"),
            placeholder="curl -H 'Accept: application/json' https://…",
        )
        if st.button("Add as a call", key=d.key("curl_add")):
            base = next((c.base_url for c in d.connections if c.id == draft["connection_id"]), "")
            try:
                parsed = parse_curl(command, base_url=base)
            except StudioError as e:
                st.error(str(e))
            else:
                if blank_call(draft["calls"][-1]):  # the empty call a new job starts with
                    draft["calls"][-1] = parsed.call
                    d.uids[-1] = d.new_uid()  # its widgets start again from the pasted call
                else:
                    draft["calls"].append(parsed.call)
                    d.uids.append(d.new_uid())
                d.state[d.key("curl_secrets")] = parsed.secret_headers
                st.rerun()
        pending = d.state.get(d.key("curl_secrets"))
        if pending:
            names = ", ".join(h["name"] for h in pending)
            st.warning(
                f"The command sends credentials ({names}). They were left out of the "
                "call; move them into the connection, where they are encrypted?"
            )
            if st.button("Move into the connection", key=d.key("curl_move")):
                moved = {p["name"].lower() for p in pending}

                def add_headers(conn):
                    kept = [h for h in conn.headers if h.name.lower() not in moved]
                    added = [Header(name=h["name"], value=h["value"], secret=True) for h in pending]
                    return conn.model_copy(update={"headers": kept + added})

                store.modify("connections", draft["connection_id"], add_headers, source="studio")
                d.state.pop(d.key("curl_secrets"))
                flash(
                    "jb",
                    f"Moved {names} into connection "
                    f"{conn_names.get(draft['connection_id'])!r} as secret headers.",
                )
                st.rerun()
