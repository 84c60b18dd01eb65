"""The Calls and tests section of an API job: each call (method, path, query, headers, body,
variables, behavior), its order, a call pasted as cURL, and "Test up to here" with the test's
requests, one at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from pages.builder.basics import DELIMITERS
from pages.builder.draft import Draft
from pages.builder.files import ENCODINGS
from pages.builder.widgets import field
from pages.common import flash, show_error
from studio.config.connections import Header
from studio.config.jobs import (
    BUILTINS,
    ApiJob,
    DownloadBehavior,
    NoBehavior,
    PaginationBehavior,
    RetryBehavior,
    draft_job,
)
from studio.config.store import ConfigStore
from studio.curl import parse_curl
from studio.detect import content_finders, links_of, pagination
from studio.errors import StudioError
from studio.runs import preview_job

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
STOPS = ["total_pages_path", "total_records_path", "records_path", "stop_on_short_page"]


def behavior_form(d: Draft, uid: str, b: dict) -> dict:
    """The chosen behavior's own fields, drawn from its model; returns only those."""
    model = MODELS[b["type"]]
    where = ("c", uid, "b")
    if model is PaginationBehavior:
        c = st.columns(3)
        style = field(d, c[0], model, "style", b, *where, options=STYLES)
        for col, name in zip(c[1:], PAGING, strict=True):
            field(d, col, model, name, b, *where)
        rows = [STYLE_FIELDS[style], STOPS[:3], STOPS[3:]]
    else:
        names = [n for n in model.model_fields if n != "type"]
        rows = [names[i : i + 3] for i in range(0, len(names), 3)]
    for row in rows:
        cols = st.columns(3)
        for col, name in zip(cols, row, strict=False):
            field(d, col, model, name, b, *where, options=OPTIONS.get(name))
    return {k: v for k, v in b.items() if k == "type" or k in model.model_fields}


def run_test(d: Draft, store: ConfigStore, up_to: int) -> None:
    limits = d.limits
    with st.status(f"Testing call{'s 1–' if up_to > 1 else ' '}{up_to}…", expanded=True) as status:
        try:
            job = draft_job(d.data, up_to_call=up_to)
            conn = store.get("connections", job.connection_id, reveal=True)
        except StudioError as e:
            status.update(label="Not ready to test", state="error")
            show_error(e)
            return

        def progress(event: dict) -> None:
            if event["kind"] == "exchange":
                ex = event["exchange"]
                status.write(
                    f"{ex.label}: {ex.method} {ex.url} → {ex.status or ex.error} "
                    f"({ex.elapsed_ms:.0f} ms)"
                )

        trace = preview_job(
            job,
            conn,
            store.home,
            up_to_call=up_to,
            max_pages=limits["pages"],
            max_records=limits["records"],
            on_event=progress,
        )
        d.test = {
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


def suggestions(d: Draft, trace: dict, call: int) -> None:
    """What the last test's response suggests: the content finder and the pagination, each a
    button the analyst clicks to take it (nothing is applied unasked)."""
    docs = trace["documents"]
    if not docs:
        return
    headers = trace["exchanges"][-1]["response_headers"] if trace["exchanges"] else {}
    finders = content_finders(docs[0])[:3]
    paging = pagination(docs[0], links_of(headers), headers)[:3]
    if not (finders or paging):
        return
    uid = d.uids[call - 1] if call - 1 < len(d.uids) else None

    def use_finder(path: str) -> None:
        d.data["content_finder"] = d.state[d.key("content_finder")] = path

    def use_paging(settings: dict) -> None:
        d.data["calls"][call - 1]["behavior"] = {"type": "pagination", **settings}
        d.forget(f"jb.{d.jid}.c.{uid}.b")  # its form is drawn again from the draft
        d.forget(f"jb.{d.jid}.c.{uid}.behavior")

    box = st.container(border=True)
    box.markdown(f"**Suggested by the test of call {call}**")
    for n, f in enumerate(finders):
        box.button(
            f"Content finder {f.path} ({f.records} records)",
            key=d.key("suggest_finder", n),
            on_click=use_finder,
            args=(f.path,),
            disabled=f.path == d.data.get("content_finder"),
        )
    for n, p in enumerate(paging if uid else []):
        box.button(
            f"Pagination: {p.settings['style'].replace('_', ' ')}, as {p.why}",
            key=d.key("suggest_paging", n),
            on_click=use_paging,
            args=(p.settings,),
        )


def show_test(d: Draft) -> None:
    test = d.test
    if not test:
        return
    trace = test["trace"]
    suggestions(d, trace, test["call"])
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
        show_exchanges(d, exchanges)
    if trace["log"]:
        with st.expander("Log"):
            st.code("\n".join(trace["log"]))


def show_exchanges(d: Draft, exchanges: list[dict]) -> None:
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
        key=d.key("exchanges"),
    )
    failed = next(
        (n for n, ex in enumerate(exchanges) if ex["error"] or (ex["status"] or 0) >= 400),
        len(exchanges) - 1,
    )
    n = st.selectbox(
        "Request details",
        range(len(exchanges)),
        index=failed,
        key=d.key("exchange_pick"),
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
            call["behavior"] = behavior_form(d, uid, b)
        if st.button("Test up to here", key=d.key("c", uid, "test"), type="primary"):
            run_test(d, store, i + 1)


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
    limits = d.limits
    c = st.columns(4)
    limits["pages"] = c[0].number_input(
        "Preview: max pages", 1, 1000, key=d.seeded(d.key("limit_pages"), limits["pages"])
    )
    limits["records"] = c[1].number_input(
        "Preview: max records", 1, 100_000, key=d.seeded(d.key("limit_records"), limits["records"])
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
    show_test(d)


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
