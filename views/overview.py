"""Overview: is the runner up, how are the jobs doing, what failed lately, what was imported."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from studio.config.schedules import next_runs
from studio.config.store import ConfigStore
from studio.guide import first_steps, own
from studio.runhistory import counts_text, runner_status
from studio.stores import open_history
from views.access import gate

STEP_PAGES = {  # where each first step is done
    "connect": ("views/connections.py", "Connections"),
    "build": ("views/jobs.py", "Import jobs"),
    "schedule": ("views/jobs.py", "Import jobs"),
}

store = ConfigStore()
gate(store)
history = open_history(store.home)
connections = store.list("connections")
jobs = store.list("jobs")
runs = history.list(limit=2000)

st.title("Connector Studio")
if steps := first_steps(connections, jobs, runs):
    with st.container(border=True, key="onboarding"):
        st.markdown("**Start here**: three steps to your first import.")
        for number, step in enumerate(steps, 1):
            where, title = STEP_PAGES[step.key]
            st.page_link(
                where,
                label=f"Step {number} · {step.title} ({title}) — {step.hint}",
                icon=":material/check_circle:" if step.done else ":material/circle:",
            )
        if len(own([*connections, *jobs])) < len(connections) + len(jobs):
            st.caption("The demo connection and jobs are there to try; they are not counted here.")
status = runner_status(store.home)
if status["up"]:
    st.success(
        f"The runner is up (since {status['started_at'][:16].replace('T', ' ')} UTC, "
        f"last seen {status['last_seen'][11:19]}); running now: "
        f"{len(status.get('running', []))}."
    )
else:
    seen = status.get("last_seen")
    st.warning(
        "The runner is down"
        + (f" (last seen {seen[:19].replace('T', ' ')} UTC)" if seen else "")
        + ": scheduled jobs do not run. Start it "
        "with `python -m runner serve` (or `python -m runner up`)."
    )

since = (datetime.now(UTC) - timedelta(hours=24)).isoformat(timespec="seconds")
recent = [r for r in runs if r.started_at >= since]
cols = st.columns(4)
cols[0].metric("Connections", len(connections))
cols[1].metric("Active jobs", sum(j.status == "active" for j in jobs))
cols[2].metric("Runs (24 h)", len(recent))
cols[3].metric("Failed runs (24 h)", sum(r.status == "failed" for r in recent))

if jobs:
    last = {}
    for r in runs:
        last.setdefault(r.job_id, r)
    now = datetime.now(UTC)
    st.subheader("Jobs")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Job": j.name,
                    "Status": j.status,
                    "Entity": j.entity,
                    "Last run": last[j.id].status if j.id in last else "never",
                    "Last run at (UTC)": last[j.id].started_at[:16].replace("T", " ")
                    if j.id in last
                    else "",
                    "Next run (UTC)": next(
                        (f"{t:%Y-%m-%d %H:%M}" for t in next_runs(j.schedule, j.anchor, now, 1)),
                        "",
                    )
                    if j.status == "active" and j.created_at
                    else "",
                    "Schedule": j.schedule.describe(),
                }
                for j in jobs
            ]
        ),
        hide_index=True,
        width="stretch",
    )

live = [r for r in runs if r.status in ("queued", "running")]
if live:  # their counts so far: a run saves them as it goes
    st.subheader("Running now")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Started (UTC)": r.started_at[:19].replace("T", " "),
                    "Job": r.job_name,
                    "Status": r.status,
                    "So far": counts_text(r),
                }
                for r in live
            ]
        ),
        hide_index=True,
        width="stretch",
    )

failures = [r for r in runs if r.status == "failed"][:10]
if failures:
    st.subheader("Recent failures")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "At (UTC)": r.started_at[:19].replace("T", " "),
                    "Job": r.job_name,
                    "Error": r.error or "",
                }
                for r in failures
            ]
        ),
        hide_index=True,
        width="stretch",
    )

done = [r for r in runs if r.rows_written]
if done:
    st.subheader("Rows imported per day")
    frame = pd.DataFrame(
        [{"day": r.started_at[:10], "job": r.job_name, "rows": r.rows_written} for r in done]
    )
    st.bar_chart(frame.pivot_table(index="day", columns="job", values="rows", aggfunc="sum"))

st.page_link("views/jobs.py", label="Build an import job", icon=":material/sync_alt:")
