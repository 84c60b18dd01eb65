"""Runs: the history with filters, a run's detail and files, "Run now", and a job's trend."""

import threading
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import flash, show_flash
from studio.config.store import ConfigStore
from studio.runhistory import (
    AlreadyRunning,
    counts_text,
    duration_seconds,
    run_archive,
    run_files,
)
from studio.runs import run_job
from studio.stores import open_history

store = ConfigStore()
history = open_history(store.home)
state = st.session_state

st.title("Runs")
show_flash("runs")

jobs = store.list("jobs")
names = {j.id: j.name for j in jobs}
with st.container(horizontal=True, vertical_alignment="bottom"):
    pick = st.selectbox(
        "Run now",
        [j.id for j in jobs],
        format_func=names.get,
        index=None,
        placeholder="a job…",
        key="runs_now_job",
    )
    if st.button("Run now", key="runs_now", disabled=pick is None):
        try:  # claimed here, so a refusal is shown now; the thread runs the claimed run
            claimed = history.start_run(pick, names[pick], "manual")
        except AlreadyRunning as e:
            st.warning(f"{e}: a job never runs twice at once.")
        else:
            # In the background: the page stays usable, the history shows it running.
            threading.Thread(
                target=run_job, args=(store, pick), kwargs={"run": claimed}, daemon=True
            ).start()
            flash("runs", f"Started {names[pick]!r}.")
            st.rerun()

runs = history.list(limit=1000)
left, middle, right = st.columns(3)
job_filter = left.multiselect("Job", sorted({r.job_name for r in runs}), key="runs_jobs")
status_filter = middle.multiselect(
    "Status",
    ["running", "success", "partial", "failed", "skipped", "interrupted"],
    key="runs_status",
)
dates = right.date_input("Started between", value=[], key="runs_dates")
shown = [
    r
    for r in runs
    if (not job_filter or r.job_name in job_filter)
    and (not status_filter or r.status in status_filter)
    and (len(dates) != 2 or dates[0].isoformat() <= r.started_at[:10] <= dates[1].isoformat())
]
if not shown:
    st.info("No run yet." if not runs else "No run matches these filters.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "Started (UTC)": r.started_at.replace("T", " ")[:19],
            "Job": r.job_name,
            "Trigger": r.trigger,
            "Status": r.status,
            "Seconds": duration_seconds(r),
            "Records": r.records,
            "Rows": r.rows_written,
            "Rejected": r.rows_rejected,
            "Requests": r.requests,
            "Attempts": max(r.attempts, r.requests),  # runs recorded before attempts: as many
            "Files read": r.files,
            "Error": r.error,
            "Run": r.id,
        }
        for r in shown
    ]
)
st.dataframe(table, hide_index=True, width="stretch", height=320)

run_id = st.selectbox(
    "Run",
    [r.id for r in shown],
    key="runs_pick",
    format_func=lambda i: next(
        f"{r.started_at[:19]} · {r.job_name} · {r.status}" for r in shown if r.id == i
    ),
)
LIVE_EVERY = 1.0  # seconds between refreshes of a running run's counts


def show_counts(run) -> None:
    """The run's counts: as far as it got while it runs (the run saves them as it goes)."""
    st.caption(("So far: " if run.status in ("queued", "running") else "") + counts_text(run))
    cols = st.columns(6)
    retried = run.attempts > run.requests
    cols[0].metric("Records", run.records)
    cols[1].metric("Rows written", run.rows_written)
    cols[2].metric("Rejected", run.rows_rejected)
    cols[3].metric(
        "Requests",
        run.requests,
        delta=f"{run.attempts} attempts" if retried else None,
        delta_color="off",
        delta_arrow="off",
        help="Attempts: the requests and their transport retries",
    )
    cols[4].metric("Pages", run.pages)
    cols[5].metric("Files read", run.files)


def show_files(run) -> None:
    files = run_files(run)
    if files:
        name, data, mime = run_archive(run)
        st.download_button(f"Download {name}", data, file_name=name, mime=mime, key="runs_download")
    rejects = next((f for f in files if f.name == "rejects.csv"), None)
    if rejects and run.rows_rejected:
        st.markdown("**Rejects**")
        st.dataframe(pd.read_csv(rejects, nrows=500), hide_index=True, width="stretch")
    log = next((f for f in files if f.name == "run.log"), None)
    if log:
        with st.expander("Log"):
            st.dataframe(
                pd.read_json(log, lines=True) if Path(log).stat().st_size else pd.DataFrame(),
                hide_index=True,
                width="stretch",
            )


def show_run(run_id: str, was_running: bool) -> None:
    """A run's detail. While it runs, a fragment redraws its counts every second; when it
    ends, the whole page reruns, so that the table and the files show its end."""
    run = history.get(run_id)
    if was_running and run.status not in ("queued", "running"):
        st.rerun()
    st.subheader(f"{run.job_name} · {run.status}")
    if run.error:
        (st.error if run.status == "failed" else st.warning)(run.error)
    show_counts(run)
    st.caption(
        f"Trigger {run.trigger} · started {run.started_at} · finished {run.finished_at or '—'}"
        + (f" · slot {run.slot}" if run.slot else "")
        + f" · id `{run.id}`"
    )
    show_files(run)


run = history.get(run_id)
running = run.status in ("queued", "running")
st.fragment(show_run, run_every=LIVE_EVERY if running else None)(run_id, running)

trend = [r for r in runs if r.job_id == run.job_id and r.finished_at][:100]
if len(trend) > 1:
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
