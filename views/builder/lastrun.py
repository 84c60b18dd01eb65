"""Run now and the job's last run, in its editor: the run reports itself while it goes (its
counts so far, every second) and says when it ends, without leaving the builder."""

from __future__ import annotations

import streamlit as st

from studio.access import acting_who
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.runhistory import AlreadyRunning, RunHistory, counts_text, ended_text
from studio.runs import start_in_background
from studio.stores import open_history
from views.access import fragment
from views.builder.draft import Draft
from views.common import allowed

LIVE_EVERY = 1.0  # seconds between redraws while the job runs
LIVE = ("queued", "running")


def run_now(d: Draft, store: ConfigStore, bar) -> None:
    """The Run now button in the job's action bar, and its last run under it."""
    history = open_history(store.home)
    job = d.current
    unsaved = " Your unsaved changes are not part of it." if d.dirty else ""
    pressed = bar.button("Run now", key="jb_run_now", help=f"Run the saved job now.{unsaved}")
    if pressed and allowed(acting_who(), "editor", "run a job"):
        try:
            start_in_background(store, job.id)
        except AlreadyRunning as e:
            st.warning(f"{e}: a job never runs twice at once.")
        except StudioError as e:  # distributed mode: Redis did not take the run
            st.error(str(e))
    # The run seen going is watched, so that its end is told whenever the page sees it.
    watched = f"jb_watch.{job.id}"
    last = history.list(job.id, limit=1)
    live = bool(last) and last[0].status in LIVE
    if live:
        st.session_state[watched] = last[0].id
    elif last and st.session_state.get(watched) == last[0].id:
        del st.session_state[watched]
        st.toast(ended_text(last[0]))
    fragment(last_run, run_every=LIVE_EVERY if live else None)(history, job.id, live)


def last_run(history: RunHistory, job_id: str, was_live: bool) -> None:
    runs = history.list(job_id, limit=1)
    if not runs:
        st.caption("Not run yet.")
        return
    run = runs[0]
    if was_live and run.status not in LIVE:
        st.rerun()  # the whole page: the refresh stops, the end is told
    when = run.started_at.replace("T", " ")[:16]
    so_far = "so far: " if run.status in LIVE else ""
    text = f"**Last run** ({when} UTC, {run.trigger}): **{run.status}** · {so_far}"
    st.markdown(text + counts_text(run) + (f" · {run.error}" if run.error else ""))
    st.page_link("views/runs.py", label="See it on the Runs page", icon=":material/history:")
