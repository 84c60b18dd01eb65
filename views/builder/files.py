"""The Files and test section of a file job: the path or the bulk folders, a browser of the
server's folders, the CSV settings, and a test that reads the first rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from studio.config.jobs import CsvSettings, FileSource, draft_job
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.files import connect
from studio.runs import preview_job
from views.builder.basics import DELIMITERS
from views.builder.draft import Draft
from views.builder.widgets import field
from views.common import show_error

SHOWN = 200  # rows drawn in a table; counts are always of everything
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "latin-1": "Latin-1",
    "cp1252": "Windows-1252",
}


def browse(d: Draft, store: ConfigStore, folder: str) -> None:
    """The server's folders and files, to pick a path from."""
    try:
        conn = store.get("connections", d.data["connection_id"], reveal=True)
        with connect(conn, store.home, timeout=15) as client:
            entries = client.list(folder)
    except StudioError as e:
        st.error(str(e))
        return
    d.state[d.key("listing")] = [
        {
            "name": e.name + ("/" if e.is_dir else ""),
            "path": e.path,
            "size": e.size,
            "modified": e.modified,
        }
        for e in entries
    ]


def files_and_test(d: Draft, store: ConfigStore) -> None:
    draft = d.data
    src, csvs = draft.setdefault("source", {"mode": "path"}), draft.setdefault("csv", {})
    src["mode"] = st.radio(
        FileSource.model_fields["mode"].title,
        ["path", "bulk"],
        horizontal=True,
        key=d.seeded(d.key("f", "mode"), src.get("mode", "path")),
        format_func={"path": "One file path", "bulk": "Bulk: every file of an inbound folder"}.get,
    )
    if src["mode"] == "path":
        field(
            d, st, FileSource, "path", src, "f", placeholder="folder/sub-folder/import-products.csv"
        )
    else:
        c = st.columns(4)
        for n, name in enumerate(["inbound", "pattern", "outbound", "error_folder"]):
            field(d, c[n], FileSource, name, src, "f", place="Source")
    with st.expander("Browse the server"):
        bar = st.container(horizontal=True, vertical_alignment="bottom")
        folder = bar.text_input("Folder", key=d.key("f", "browse"), placeholder="/ (the root)")
        if bar.button("List", key=d.key("f", "list")):
            browse(d, store, folder or "")
        listing = d.state.get(d.key("listing"))
        if listing:
            st.dataframe(pd.DataFrame(listing), hide_index=True, width="stretch")
            picked = st.selectbox("Use", [e["path"] for e in listing], key=d.key("f", "pick"))
            use = st.container(horizontal=True)
            if use.button("As the file path", key=d.key("f", "use_path")):
                src["mode"], src["path"] = "path", picked
                d.forget(f"jb.{d.jid}.f.")
                st.rerun()
            if use.button("As the inbound folder", key=d.key("f", "use_inbound")):
                src["mode"], src["inbound"] = "bulk", picked
                d.forget(f"jb.{d.jid}.f.")
                st.rerun()
    st.markdown("**CSV**")
    c = st.columns(4)
    field(d, c[0], CsvSettings, "delimiter", csvs, "f", options=DELIMITERS, place="CSV")
    field(d, c[1], CsvSettings, "encoding", csvs, "f", options=ENCODINGS)
    field(d, c[2], CsvSettings, "quote_char", csvs, "f")
    field(d, c[3], CsvSettings, "header_row", csvs, "f")
    limits = d.limits
    limits["records"] = st.number_input(
        "Preview: max rows", 1, 100_000, key=d.seeded(d.key("limit_records"), limits["records"])
    )
    if st.button("Test", key=d.key("f", "test"), type="primary"):
        with st.spinner("Reading the first rows…"):
            try:
                job = draft_job(draft)
                conn = store.get("connections", job.connection_id, reveal=True)
            except StudioError as e:
                show_error(e)
            else:
                trace = preview_job(job, conn, store.home, max_records=limits["records"])
                d.test = {
                    "call": 1,
                    "at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
                    "trace": trace.as_dict(),
                }
    show_file_test(d, csvs)


def show_file_test(d: Draft, csvs: dict) -> None:
    test = d.test
    if not test:
        return
    trace = test["trace"]
    st.markdown(f"**Last test** (at {test['at']}): {len(trace['records'])} rows read")
    if trace["error"]:
        st.error(trace["error"])
    suggested = trace["hints"].get("delimiter")
    if suggested and suggested != csvs["delimiter"]:
        st.warning(f"The first lines suggest the delimiter {DELIMITERS[suggested]}.")

        def use_delimiter(value: str = suggested) -> None:
            # A callback runs before the widgets are drawn, so it may set the widget too.
            csvs["delimiter"] = d.state[d.key("f", "delimiter")] = value

        st.button(
            f"Use {DELIMITERS[suggested]}",
            key=d.key("f", "use_delimiter"),
            on_click=use_delimiter,
        )
    for stop in trace["stopped"]:
        st.warning(stop[0].upper() + stop[1:])
    if trace["records"]:
        st.dataframe(pd.DataFrame(trace["records"][:SHOWN]), width="stretch", height=260)
    if trace["log"]:
        st.code("\n".join(trace["log"]))
