"""Runs: the history with filters, a run's detail, log and files, "Run now", and a job's trend.

While any run is queued or running, the history (table and detail) is a fragment that redraws
every second from the run history, where a run saves its counts as it goes; a notice says when
a run that was seen running ends. Nothing redraws when nothing runs."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.runhistory import (
    AlreadyRunning,
    archive_of,
    counts_text,
    duration_seconds,
    ended_text,
    plural,
    run_files,
)
from studio.runlog import timeline
from studio.runs import start_in_background
from studio.stores import open_history
from views.access import fragment, gate
from views.common import allowed, flash, plain, show_flash

LIVE_EVERY = 1.0  # seconds between redraws while a run goes on
LIVE = ("queued", "running")
store = ConfigStore()
history = open_history(store.home)
state = st.session_state
who = gate(store)

st.title("Runs")
show_flash("runs")
for notice, icon in state.pop("runs_toasts", []):  # runs that ended just before a full rerun
    st.toast(notice, icon=icon)

jobs = store.list("jobs")
names = {j.id: j.name for j in jobs}
if who.can("editor"):  # a viewer watches runs; an editor starts them
    with st.container(horizontal=True, vertical_alignment="bottom"):
        pick = st.selectbox(
            "Run now",
            [j.id for j in jobs],
            format_func=names.get,
            index=None,
            placeholder="a job…",
            key="runs_now_job",
        )
        if st.button("Run now", key="runs_now", disabled=pick is None) and allowed(
            who, "editor", "run a job"
        ):
            try:
                started = start_in_background(store, pick)
            except AlreadyRunning as e:
                st.warning(f"{e}: a job never runs twice at once.")
            except StudioError as e:  # distributed mode: Redis did not take the run
                st.error(str(e))
            else:
                state.setdefault("runs_live", set()).add(started.id)  # so its end is announced
                flash("runs", f"Started {names[pick]!r}.")
                st.rerun()


def ended_runs(runs) -> list:
    """The runs seen running by this session that are no longer running; remembers the ones
    running now. The first look announces nothing."""
    live = {r.id for r in runs if r.status in LIVE}
    seen = state.get("runs_live")
    state["runs_live"] = live
    if seen is None:
        return []
    return [run for i in seen - live if (run := history.get(i)) is not None]


def announce(ended, refreshing: bool, still_running: bool) -> None:
    """A notice for each run that ended. When the last one ended, the page reruns whole, so
    that it stops redrawing (and the notices are shown after that rerun)."""
    notices = [
        (ended_text(r), ":material/error:" if r.status == "failed" else ":material/check:")
        for r in ended
    ]
    if refreshing and not still_running:
        state["runs_toasts"] = notices
        st.rerun()
    for notice, icon in notices:
        st.toast(notice, icon=icon)


def runs_table(shown) -> None:
    now = datetime.now(UTC)
    table = pd.DataFrame(
        [
            {
                "Started (UTC)": r.started_at.replace("T", " ")[:19],
                "Job": r.job_name,
                "Trigger": r.trigger,
                "By": r.started_by,
                "Status": r.status,
                "Seconds": duration_seconds(r, now),  # so far, while it runs
                "Records": r.records,
                "Rows": r.rows_written,
                "Rejected": r.rows_rejected,
                "Discarded": r.discarded,
                "Requests": r.requests,
                "Attempts": max(r.attempts, r.requests),  # runs recorded before attempts
                "Files read": r.files,
                "Error": r.error or "",
                "Run": r.id,
            }
            for r in shown
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")  # ten rows, then it scrolls


def show_counts(run) -> None:
    """The run's counts: as far as it got while it runs (the run saves them as it goes)."""
    st.caption(("So far: " if run.status in LIVE else "") + counts_text(run))
    cols = st.columns(6)
    retried = run.attempts > run.requests
    cols[0].metric("Records", run.records)
    cols[1].metric("Rows written", run.rows_written)
    cols[2].metric("Rejected", run.rows_rejected)
    cols[3].metric(
        "Requests",
        run.requests,
        delta=plural(run.attempts, "attempt") if retried else None,
        delta_color="off",
        delta_arrow="off",
        help="Attempts: the requests and their transport retries",
    )
    cols[4].metric("Pages", run.pages)
    cols[5].metric("Files read", run.files)


def show_log(path) -> None:
    entries, total = timeline(path)
    with st.expander("Log"):  # a label that changes would close it at every redraw
        cut = f", the last {len(entries):,} shown" if total > len(entries) else ""
        st.caption(plural(total, "line") + cut)
        st.dataframe(
            pd.DataFrame(
                [(e.time, e.step, e.message) for e in entries],
                columns=["Time (UTC)", "Step", "Message"],
            ),
            hide_index=True,
            width="stretch",
            column_config={"Message": st.column_config.TextColumn(width="large")},
        )


def show_files(run) -> None:
    files = run_files(run)
    if files:
        # Zipped when clicked, not at every redraw (this part redraws every second while a
        # run goes on).
        name, mime, content = archive_of(run)
        st.download_button(
            f"Download {name}",
            content,
            file_name=name,
            mime=mime,
            key="runs_download",
        )
    rejects = next((f for f in files if f.name == "rejects.csv"), None)
    if rejects and run.rows_rejected:
        st.markdown("**Rejects**")
        st.dataframe(pd.read_csv(rejects, nrows=500), hide_index=True, width="stretch")
    log = next((f for f in files if f.name == "run.log"), None)
    if log or run.status in LIVE:  # a running run's log is in its folder, not yet in its files
        show_log(log or f"{run.folder}/run.log")


def show_run(run) -> None:
    st.subheader(f"{run.job_name} · {run.status}")
    if run.error:
        (st.error if run.status == "failed" else st.warning)(plain(run.error))
    show_counts(run)
    st.caption(
        f"Trigger {run.trigger}"
        + (f" by {run.started_by}" if run.started_by else "")
        + f" · started {run.started_at} · finished {run.finished_at or '—'}"
        + (f" · slot {run.slot}" if run.slot else "")
        + f" · id `{run.id}`"
    )
    show_files(run)


def show_trend(run, runs) -> None:
    trend = [r for r in runs if r.job_id == run.job_id and r.finished_at][:100]
    if len(trend) < 2:
        return
    st.markdown(f"**{run.job_name}: duration and rows per run**")
    frame = pd.DataFrame(
        [
            {"started": r.started_at, "seconds": duration_seconds(r), "rows": r.rows_written}
            for r in reversed(trend)
        ]
    ).set_index("started")
    left, right = st.columns(2)
    left.line_chart(frame[["seconds"]])
    right.bar_chart(frame[["rows"]])


def filtered(runs) -> list:
    left, middle, right = st.columns(3)
    job_filter = left.multiselect("Job", sorted({r.job_name for r in runs}), key="runs_jobs")
    status_filter = middle.multiselect(
        "Status",
        ["queued", "running", "success", "partial", "failed", "skipped", "interrupted"],
        key="runs_status",
    )
    dates = right.date_input("Started between", value=[], key="runs_dates")
    return [
        r
        for r in runs
        if (not job_filter or r.job_name in job_filter)
        and (not status_filter or r.status in status_filter)
        and (len(dates) != 2 or dates[0].isoformat() <= r.started_at[:10] <= dates[1].isoformat())
    ]


def history_view(refreshing: bool) -> None:
    """The filters, the table, the picked run and its job's trend, from the history as it is
    now. ``refreshing``: drawn every ``LIVE_EVERY`` seconds, because something was running."""
    runs = history.list(limit=1000)
    still_running = any(r.status in LIVE for r in runs)
    announce(ended_runs(runs), refreshing, still_running)
    shown = filtered(runs)
    if not shown:
        st.info("No run yet." if not runs else "No run matches these filters.")
        return
    runs_table(shown)
    by_id = {r.id: r for r in shown}
    run_id = st.selectbox(
        "Run",
        list(by_id),
        key="runs_pick",
        # not its status: the label of a picked run would not follow it as it changes
        format_func=lambda i: (
            f"{by_id[i].started_at[:19].replace('T', ' ')} · {by_id[i].job_name} · {i}"
        ),
    )
    show_run(by_id[run_id])
    show_trend(by_id[run_id], runs)


live = any(r.status in LIVE for r in history.list(limit=1000))
fragment(history_view, run_every=LIVE_EVERY if live else None)(live)
