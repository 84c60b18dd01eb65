"""The Basics section: name, connection, entity, external key, schedule, CSV destination."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from studio.config.jobs import CsvDestination, JobBase
from studio.config.schedules import DEFAULT_MODE, WEEKDAYS, Schedule, next_runs
from views.builder.draft import CONN_KIND, Draft
from views.builder.widgets import field

DELIMITERS = {",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
FREQUENCIES = {
    "manual": "Manual (no schedule)",
    "minutes": "Minutes",
    "hourly": "Hourly",
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "cron": "Custom (cron)",
}
MODES = {
    "hourly": {"interval": "Every X hours and Y minutes", "at": "At a given hour"},
    "daily": {"interval": "Every X days", "weekdays": "Every weekday"},
    "monthly": {
        "day": "Day X of the month",
        "last_day": "Last day of the month",
        "last_weekday": "Last weekday of the month",
    },
}


def basics(d: Draft, entities: dict, conn_names: dict) -> None:
    draft = d.data
    if d.current is None:
        kind = st.radio(
            "Import from",
            ["api", "file"],
            horizontal=True,
            key=d.seeded(d.key("kind"), draft["kind"]),
            format_func={"api": "API calls", "file": "CSV files on a file server"}.get,
        )
        if kind != draft["kind"]:
            d.restart(kind)
            d.forget(f"jb.{d.jid}.connection")
            st.rerun()
    job_conns = [c for c in d.connections if c.kind == CONN_KIND[draft["kind"]]]
    left, right = st.columns(2)
    field(d, left, JobBase, "name", draft, label="Job name")
    choices = [c.id for c in job_conns if c.status == "active" or c.id == draft["connection_id"]]
    if not choices:
        what = "API connection" if draft["kind"] == "api" else "file server connection"
        right.warning(f"No active {what} yet: create one on the Connections page.")
    else:
        if draft["connection_id"] not in choices:
            draft["connection_id"] = choices[0]
        active = {c.id for c in job_conns if c.status == "active"}
        draft["connection_id"] = right.selectbox(
            "Connection",
            choices,
            key=d.seeded(d.key("connection"), draft["connection_id"]),
            format_func=lambda cid: conn_names[cid] + ("" if cid in active else " (disabled)"),
        )
    left, right = st.columns(2)
    draft["entity"] = left.selectbox(
        "Target entity", list(entities), key=d.seeded(d.key("entity"), draft["entity"])
    )
    field(d, right, JobBase, "external_key", draft)
    schedule(d)
    destination(d, conn_names)


def schedule(d: Draft) -> None:
    st.markdown("**Schedule** (UTC)")
    sched = d.data["schedule"]
    cols = st.columns(4)
    kind = field(d, cols[0], Schedule, "type", sched, "s", place="Schedule", options=FREQUENCIES)
    modes = MODES.get(kind)
    if modes:
        mode = sched.get("mode") if sched.get("mode") in modes else next(iter(modes))
        sched["mode"] = cols[1].radio(
            "Option",
            list(modes),
            format_func=modes.get,
            key=d.seeded(d.key("s", kind, "mode"), mode),
        )
    else:
        sched["mode"] = DEFAULT_MODE[kind]
    mode = sched["mode"]
    if kind == "minutes" or (kind in ("hourly", "daily") and mode == "interval"):
        unit = {"minutes": "minutes", "hourly": "hours", "daily": "days"}[kind]
        field(
            d, cols[2], Schedule, "every", sched, "s", place="Schedule", label=f"Every (… {unit})"
        )
    if kind == "hourly" and mode == "interval":
        field(d, cols[3], Schedule, "every_minutes", sched, "s", place="Schedule")
    if kind == "monthly" and mode == "day":
        field(d, cols[2], Schedule, "day", sched, "s", place="Schedule")
    if kind == "weekly":
        sched["weekdays"] = cols[1].multiselect(
            "Days", WEEKDAYS, key=d.seeded(d.key("s", "weekdays"), sched.get("weekdays", []))
        )
    if kind in ("daily", "weekly", "monthly") or (kind == "hourly" and mode == "at"):
        field(d, cols[3], Schedule, "at", sched, "s", place="Schedule", placeholder="HH:MM")
    if kind == "cron":
        field(d, cols[1], Schedule, "cron", sched, "s", place="Schedule", placeholder="0 6 * * 1-5")
    try:
        parsed = Schedule.model_validate({k: v for k, v in sched.items() if v is not None})
        current = d.current
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


def destination(d: Draft, conn_names: dict) -> None:
    dest = d.data.setdefault("destination", {"enabled": False})
    with st.expander(
        "Also write the rows as a CSV file to a file server", expanded=bool(dest.get("enabled"))
    ):
        field(d, st, CsvDestination, "enabled", dest, "d", place="Destination")
        servers = [c for c in d.connections if c.kind == "file_server"]
        if dest["enabled"] and not servers:
            st.warning("No file server connection yet: create one on the Connections page.")
        elif dest["enabled"]:
            ids = [c.id for c in servers]
            c = st.columns(3)
            dest["connection_id"] = c[0].selectbox(
                CsvDestination.model_fields["connection_id"].title,
                ids,
                format_func=conn_names.get,
                key=d.seeded(d.key("d", "connection"), dest.get("connection_id") or ids[0]),
            )
            field(d, c[1], CsvDestination, "folder", dest, "d", place="Destination")
            field(d, c[2], CsvDestination, "file_name", dest, "d", place="Destination")
            c = st.columns(3)
            field(
                d,
                c[0],
                CsvDestination,
                "column_delimiter",
                dest,
                "d",
                place="Destination",
                options=DELIMITERS,
            )
            rows = {"\n": "LF (\\n)", "\r\n": "CRLF (\\r\\n)"}
            field(
                d,
                c[1],
                CsvDestination,
                "row_delimiter",
                dest,
                "d",
                place="Destination",
                options=rows,
            )
            for n, name in enumerate(
                [
                    "include_header",
                    "wrap_with_quotes",
                    "replace_tab_with_space",
                    "replace_newline_with_space",
                    "neutralize_formulas",
                ]
            ):
                field(d, st.columns(2)[n % 2], CsvDestination, name, dest, "d", place="Destination")
