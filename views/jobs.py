"""Import jobs: the builder analysts spend their day in.

Layout only: the list of jobs, the one being edited, its actions, one section at a time (drawn
by ``views.builder``) and Save. The job being edited is a ``Draft`` kept in the session and in
the studio's home, under a key the URL carries (``?job=<id>``, ``?draft=new-…``), so that
nothing typed is lost between pages, on a reload or in a second tab; every action is one call
into ``studio``.
"""

import uuid

import pandas as pd
import streamlit as st

from studio.config.store import ConfigStore
from studio.drafts import DraftStore, valid_key
from studio.entities import load_entities
from studio.errors import StudioError
from views.access import gate
from views.builder.basics import basics
from views.builder.calls import calls_and_tests
from views.builder.draft import Draft, unsaved_bar
from views.builder.files import files_and_test
from views.builder.lastrun import run_now
from views.builder.mapping import records_and_mapping
from views.common import allowed, config_actions, flash, show_flash

NEW = "+ New job"
SECTIONS = {
    "api": ["Basics", "Calls and tests", "Records and mapping"],
    "file": ["Basics", "Files and test", "Records and mapping"],
}

store = ConfigStore()
drafts = DraftStore(store.home)
state = st.session_state
entities = load_entities()
who = gate(store)

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

if not who.can("editor"):
    # A viewer reads a job as the store keeps it (secrets masked), with no builder: the builder
    # keeps drafts and runs tests, which are an editor's.
    viewed = st.selectbox("Open", [j.name for j in jobs], key="jb_view", index=None)
    if viewed:
        job = next(j for j in jobs if j.name == viewed)
        st.caption(f"{job.status} · {job.schedule.describe()} · id `{job.id}`")
        st.json(job.model_dump(mode="json"), expanded=2)
    st.caption("You are a viewer: an editor creates, changes, tests and runs jobs.")
    st.stop()

if "jb_pick_next" in state:
    state["jb_pick"] = state.pop("jb_pick_next")
names = [j.name for j in jobs]
if "jb_pick" not in state:  # a new session (a reload, a second tab): the URL says what was open
    wanted = st.query_params.get("job")
    draft_key = st.query_params.get("draft", "")
    by_id = {j.id: j.name for j in jobs}
    if wanted in by_id:
        state["jb_pick"] = by_id[wanted]
        if valid_key(draft_key) and draft_key.startswith("job-"):
            state[f"jb_draft_key.{wanted}"] = draft_key
    elif valid_key(draft_key) and draft_key.startswith("new-"):
        state["jb_pick"], state["jb_new_key"] = NEW, draft_key
    else:  # back from another page: reopen what was open
        state["jb_pick"] = state.get("jb_open", NEW)
    drafts.prune()
if state["jb_pick"] not in [NEW, *names]:
    state["jb_pick"] = NEW
choice = st.selectbox("Open", [NEW, *names], key="jb_pick")
state["jb_open"] = choice
current = next((j for j in jobs if j.name == choice), None)
# A draft per link: two analysts (or browsers) on one job never share one.
if current is None:
    key = draft_key = state.setdefault("jb_new_key", f"new-{uuid.uuid4().hex[:12]}")
    url = {"draft": key}
else:
    key = current.id
    draft_key = state.setdefault(f"jb_draft_key.{key}", f"job-{uuid.uuid4().hex[:12]}")
    url = {"job": key, "draft": draft_key}
if st.query_params.to_dict() != url:
    st.query_params.from_dict(url)
d = Draft(current.id if current else "new", current, connections, drafts, key, draft_key)

if current is not None:
    st.caption(f"{current.status} · {current.schedule.describe()} · id `{current.id}`")

    def deleted() -> None:
        d.discard()
        drafts.forget_job(current.id)
        state["jb_pick_next"] = NEW

    bar = config_actions(store, "jobs", current, "jb", deleted, who)
    if bar.button("Clone", key="jb_clone") and allowed(who, "editor", "clone a job"):
        copy = store.clone("jobs", current.id, source="studio")
        flash("jb", f"Cloned into {copy.name!r} (disabled until you activate it).")
        state["jb_pick_next"] = copy.name
        st.rerun()
    run_now(d, store, bar)

mark = st.container()  # the unsaved mark, filled once the section below has updated the draft

# One section drawn at a time, not st.tabs: tabs draw every section on every rerun, and the
# browser then redraws all of them each time the live preview changes. What is typed in a
# section that is not drawn lives on in the draft.
sections = SECTIONS[d.data["kind"]]
if state.get("jb_section") not in sections:
    last = state.get("jb_section_last")
    state["jb_section"] = last if last in sections else sections[0]
section = st.segmented_control("Section", sections, key="jb_section", label_visibility="collapsed")
state["jb_section_last"] = section

if section == "Basics":
    basics(d, entities, conn_names)
elif section == "Calls and tests":
    calls_and_tests(d, store, conn_names)
elif section == "Files and test":
    files_and_test(d, store)
elif section == "Records and mapping":
    records_and_mapping(d, entities)

d.persist()
unsaved_bar(d, mark)
save_failed = f"jb_save_failed.{d.jid}"
if st.button("Save job" if current else "Create job", type="primary", key="jb_save") and allowed(
    who, "editor", "save a job"
):
    state[f"jb_tried.{d.jid}"] = True  # from now on every problem shows beside its field
    try:
        if current is None:
            saved = store.create("jobs", dict(d.data), source="studio")
        else:
            saved = store.update("jobs", current.id, dict(d.data), source="studio")
    except StudioError as e:
        state[save_failed] = (d.stamp, getattr(e, "messages", None) or [str(e)])
        st.rerun()  # drawn again, with each problem beside its field
    else:
        # Reload from the store: what is shown is exactly what was saved.
        state.pop(save_failed, None)
        d.discard()
        d.saved_as(saved.id)
        flash("jb", f"Saved job {saved.name!r}.")
        state["jb_pick_next"] = saved.name
        st.rerun()
# Why the last Save failed while nothing changed since; then what is left to fix as it is fixed.
failed = state.get(save_failed)
if failed and failed[0] == d.stamp:
    reasons = failed[1]
else:
    reasons = d.problems if state.get(f"jb_tried.{d.jid}") else []
for reason in reasons:
    st.error(reason)
