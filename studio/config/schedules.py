"""Schedules, always in UTC: the forms of DJUST's scheduler table, stored and described.

Calendar forms (a time of day, weekdays, a day of the month, the last day or last weekday)
become cron expressions evaluated by ``cronsim``, which knows ``L`` and ``LW``; interval forms
(every X minutes, every X hours and Y minutes, every X days) are intervals from an anchor. The
runner computes due times from these; the studio shows ``describe``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator

from studio.config.base import ConfigModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: list[str] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAY_NAMES = dict(
    zip(
        WEEKDAYS,
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        strict=True,
    )
)
_CRON_DOW = {d: str((i + 1) % 7) for i, d in enumerate(WEEKDAYS)}  # cron: 0 = Sunday
_MODES = {
    "manual": {"none"},
    "minutes": {"interval"},
    "hourly": {"interval", "at"},
    "daily": {"interval", "weekdays"},
    "weekly": {"days"},
    "monthly": {"day", "last_day", "last_weekday"},
    "cron": {"cron"},
}
DEFAULT_MODE = {
    "manual": "none",
    "minutes": "interval",
    "hourly": "interval",
    "daily": "interval",
    "weekly": "days",
    "monthly": "day",
    "cron": "cron",
}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Schedule(ConfigModel):
    """When a job runs (UTC). ``type`` picks the form and ``mode`` the option within it."""

    type: Literal["manual", "minutes", "hourly", "daily", "weekly", "monthly", "cron"] = Field(
        default="manual", title="Frequency"
    )
    mode: str = Field(default="", title="Option")
    every: int = Field(default=1, ge=1, le=10_000, title="Every")
    every_minutes: int = Field(default=0, ge=0, le=59, title="And minutes")
    at: str = Field(default="00:00", title="At (UTC)")
    weekdays: list[Weekday] = Field(default_factory=list, title="Days")
    day: int = Field(default=1, ge=1, le=31, title="Day of the month")
    cron: str = Field(default="", title="Cron expression")
    anchor: datetime | None = Field(
        default=None,
        title="Anchor (UTC)",
        description="The point interval schedules (every X minutes, hours or days) count from. "
        "Empty: when the job was created. Exports write it, so that a job moved to another "
        "store keeps its days.",
    )

    @field_validator("at")
    @classmethod
    def _time(cls, v: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v)
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError("must be a time of day from 00:00 to 23:59")
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if not self.mode:
            self.mode = DEFAULT_MODE[self.type]
        if self.mode not in _MODES[self.type]:
            options = ", ".join(sorted(_MODES[self.type]))
            raise ValueError(f"Option: a {self.type} schedule takes one of {options}")
        if self.type == "weekly" and not self.weekdays:
            raise ValueError("Days: tick at least one day")
        if self.type == "cron":
            if not self.cron.strip():
                raise ValueError("Cron expression: is required")
            try:
                CronSim(self.cron, datetime(2000, 1, 1))
            except CronSimError as e:
                raise ValueError(f"Cron expression: {self.cron!r} is not valid: {e}") from None
        return self

    @property
    def hour(self) -> int:
        return int(self.at[:2])

    @property
    def minute(self) -> int:
        return int(self.at[3:])

    def interval_minutes(self) -> int | None:
        """The period of an interval form, in minutes; None for calendar forms."""
        if self.type == "minutes":
            return self.every
        if self.type == "hourly" and self.mode == "interval":
            return self.every * 60 + self.every_minutes
        if self.type == "daily" and self.mode == "interval":
            return self.every * 24 * 60
        return None

    def cron_expression(self) -> str | None:
        """The cron expression of a calendar form; None for interval and manual forms."""
        m, h = self.minute, self.hour
        match (self.type, self.mode):
            case ("hourly", "at"):
                return f"{m} {h} * * *"
            case ("daily", "weekdays"):
                return f"{m} {h} * * 1-5"
            case ("weekly", _):
                days = sorted({int(_CRON_DOW[d]) for d in self.weekdays})
                return f"{m} {h} * * {','.join(map(str, days))}"
            case ("monthly", "day"):
                return f"{m} {h} {self.day} * *"
            case ("monthly", "last_day"):
                return f"{m} {h} L * *"
            case ("monthly", "last_weekday"):
                return f"{m} {h} LW * *"
            case ("cron", _):
                return self.cron.strip()
        return None

    def describe(self) -> str:
        """The schedule in words: "on the last weekday of every month at 06:00 UTC"."""
        at = f"at {self.at} UTC"
        match (self.type, self.mode):
            case ("manual", _):
                return "manually (no schedule)"
            case ("minutes", _):
                return "every minute" if self.every == 1 else f"every {self.every} minutes"
            case ("hourly", "interval"):
                hours = "every hour" if self.every == 1 else f"every {self.every} hours"
                return hours + (f" and {self.every_minutes} minutes" if self.every_minutes else "")
            case ("hourly", "at") | ("daily", "interval") if self.every == 1 or self.mode == "at":
                return f"every day {at}"
            case ("daily", "interval"):
                return f"every {self.every} days {at}"
            case ("daily", "weekdays"):
                return f"every weekday (Monday to Friday) {at}"
            case ("weekly", _):
                days = [_DAY_NAMES[d] for d in WEEKDAYS if d in self.weekdays]
                listed = days[0] if len(days) == 1 else ", ".join(days[:-1]) + " and " + days[-1]
                return f"every {listed} {at}"
            case ("monthly", "day"):
                return f"on the {_ordinal(self.day)} of every month {at}" + (
                    " (months without that day are skipped)" if self.day > 28 else ""
                )
            case ("monthly", "last_day"):
                return f"on the last day of every month {at}"
            case ("monthly", "last_weekday"):
                return f"on the last weekday of every month {at}"
        explained = CronSim(self.cron, datetime.now(UTC).replace(tzinfo=None)).explain()
        return f"cron {self.cron.strip()} ({explained[0].lower() + explained[1:]}, UTC)"


def _naive_utc(moment: datetime) -> datetime:
    """cronsim works on naive datetimes; ours are UTC, aware or not."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _interval_origin(schedule: Schedule, anchor: datetime) -> datetime:
    """The first slot of an interval form: the anchor's minute, or its day at ``at``."""
    base = _naive_utc(anchor).replace(second=0, microsecond=0)
    if schedule.type == "daily":
        return base.replace(hour=schedule.hour, minute=schedule.minute)
    return base


def next_runs(schedule: Schedule, anchor: datetime, after: datetime, n: int = 5) -> list[datetime]:
    """The next ``n`` run times strictly after ``after`` (UTC, aware).

    Interval forms count from ``anchor`` (the job's creation, a fixed point), so when they fall
    never depends on when a daemon started; calendar forms and cron come from cronsim."""
    start = _naive_utc(after)
    out: list[datetime] = []
    if schedule.type == "manual" or n <= 0:
        return out
    period = schedule.interval_minutes()
    if period is not None:
        origin = _interval_origin(schedule, anchor)
        step = timedelta(minutes=period)
        k = 0 if start < origin else int((start - origin) // step) + 1
        out = [origin + step * (k + i) for i in range(n)]
    else:
        expression = schedule.cron_expression()
        sim = CronSim(expression, start)
        for moment in sim:
            if moment > start:
                out.append(moment)
            if len(out) == n:
                break
    return [m.replace(tzinfo=UTC) for m in out]


def last_slot(schedule: Schedule, anchor: datetime, now: datetime) -> datetime | None:
    """The latest run time at or before ``now`` (UTC, aware), or None if there is none."""
    if schedule.type == "manual":
        return None
    current = _naive_utc(now).replace(second=0, microsecond=0)
    period = schedule.interval_minutes()
    if period is not None:
        origin = _interval_origin(schedule, anchor)
        if current < origin:
            return None
        step = timedelta(minutes=period)
        return (origin + step * int((current - origin) // step)).replace(tzinfo=UTC)
    found = next(
        iter(CronSim(schedule.cron_expression(), current + timedelta(minutes=1), reverse=True)),
        None,
    )
    return found.replace(tzinfo=UTC) if found else None


def due(
    schedule: Schedule,
    anchor: datetime,
    last_run: datetime | None,
    now: datetime,
    *,
    catch_up: bool = True,
    tolerance: timedelta = timedelta(minutes=2),
) -> datetime | None:
    """The slot to run now, if any: the latest slot after the last run. Missed slots (the daemon
    was down) are run once, not once each, and only when ``catch_up``; otherwise a slot older
    than ``tolerance`` waits for the next one."""
    slot = last_slot(schedule, anchor, now)
    if slot is None:
        return None
    since = (last_run or anchor).astimezone(UTC)  # never a slot from before the job existed
    if slot <= since:
        return None
    if not catch_up and now.astimezone(UTC) - slot > tolerance:
        return None
    return slot
