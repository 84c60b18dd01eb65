"""The test panel of an API job, beside its calls (as in Airbyte's builder): the content
finder, the test running (pages, records, elapsed time, Cancel), what the last test found and
suggests, and its requests one at a time. The test runs in a thread of its own
(``studio.previewtask``), so the analyst can set the content finder while it runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from studio.config.jobs import draft_job
from studio.config.store import ConfigStore
from studio.detect import content_finders, links_of, pagination
from studio.errors import StudioError
from studio.previewtask import PreviewTask
from studio.runhistory import plural
from views.access import fragment
from views.builder.draft import Draft, cancel_test
from views.builder.mapping import content_finder, found, records_table, use_finder
from views.common import plain

SHORT = 1.5  # seconds a test may take before the page is drawn; a longer one shows progress
LIVE_EVERY = 0.5  # seconds between two redraws of a running test's progress


def start_test(d: Draft, store: ConfigStore, up_to: int) -> None:
    """Test calls 1 to ``up_to``; what stops the test from starting is said next to its
    button, field by field."""
    try:
        job = draft_job(d.data, up_to_call=up_to)
        conn = store.get("connections", job.connection_id, reveal=True)
    except StudioError as e:
        d.state[d.key("not_ready")] = (up_to, getattr(e, "messages", None) or [str(e)])
        return
    d.state.pop(d.key("not_ready"), None)
    cancel_test(d)  # a second test replaces the first; the first must not go on
    limits = d.limits
    task = PreviewTask(
        job,
        conn,
        store.home,
        up_to_call=up_to,
        max_pages=limits["pages"],
        max_records=limits["records"],
    )
    if task.wait(SHORT):
        finish(d, task)
    else:
        d.state[d.key("task")] = task


def not_ready(d: Draft, up_to: int) -> None:
    """Why the test of calls 1 to ``up_to`` could not start, under its button."""
    call, messages = d.state.get(d.key("not_ready")) or (None, [])
    if call == up_to:
        st.error("Not ready to test:\n\n" + "\n".join(f"- {m}" for m in messages))


def finish(d: Draft, task: PreviewTask) -> None:
    d.state.pop(d.key("task"), None)
    d.test = {
        "call": task.up_to_call,
        "at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "trace": task.trace.as_dict(),
    }


def running(d: Draft) -> None:
    """The test still running: its progress so far and Cancel; the page is drawn again when it
    ends."""
    task: PreviewTask | None = d.state.get(d.key("task"))
    if task is None:
        return
    if task.wait(0):
        finish(d, task)
        st.rerun()  # the whole page: the calls' side and the requests show the test too
    calls = f"calls 1–{task.up_to_call}" if task.up_to_call > 1 else "call 1"
    box = st.container(border=True)
    box.markdown(f"**Testing {calls}…** {task.progress.text()}")
    if task.progress.last:
        box.caption(task.progress.last)
    box.button(
        "Cancelling…" if task.cancelled else "Cancel",
        key=d.key("cancel"),
        on_click=task.cancel,
        disabled=task.cancelled,
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
            args=(d, f.path),
            disabled=f.path == d.data.get("content_finder"),
        )
    for n, p in enumerate(paging if uid else []):
        label = f"Pagination: {p.settings['style'].replace('_', ' ')}, as {p.why}"
        if box.button(label, key=d.key("suggest_paging", n)):
            use_paging(p.settings)
            st.rerun(scope="app")  # the call's form is outside this panel: draw it again


def summary(d: Draft) -> None:
    """What the last test did: requests, records (as the content finder finds them), stops."""
    test = d.test
    trace = test["trace"]
    st.markdown(
        f"**Last test** (calls 1–{test['call']}, at {test['at']}): "
        f"{plural(len(trace['exchanges']), 'request')}, "
        f"{plural(len(trace['records']), 'record')}"
    )
    if trace["error"]:
        st.error(plain(trace["error"]))
    for stop in trace["stopped"]:
        st.warning(plain(stop[0].upper() + stop[1:]))


def panel(d: Draft) -> None:
    """The right-hand side: drawn again on its own while a test runs or the finder is typed."""
    running(d)
    finder = content_finder(d)
    d.persist()
    if not d.test:
        st.info("Test a call to see its records here, with what its response suggests.")
        return
    summary(d)
    suggestions(d, d.test["trace"], d.test["call"])
    result = found(d)
    if result["error"]:
        st.error(result["error"])
    elif not result["records"] and result["near"]:
        st.warning(f"No records at {finder}. Paths that match: " + ", ".join(result["near"]))
    st.markdown(f"**{plural(len(result['records']), 'record')}** at {finder}")
    records_table(d, result, height=260)


def test_panel(d: Draft) -> None:
    live = d.state.get(d.key("task")) is not None
    fragment(panel, run_every=LIVE_EVERY if live else None)(d)


def show_test(d: Draft) -> None:
    """The last test's requests, one at a time, and its log, under the calls and the panel."""
    test = d.test
    if not test:
        return
    trace = test["trace"]
    if trace["exchanges"]:
        show_exchanges(d, trace["exchanges"])
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
