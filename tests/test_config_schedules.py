"""Schedules in UTC: next runs against cronsim and hand-checked dates; due slots that neither
shift nor skip across restarts, with missed runs caught up once; a schedule in words and as
cron."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cronsim import CronSim

from studio.config.schedules import Schedule, due, last_slot, next_runs

ANCHOR = datetime(2026, 1, 10, 9, 17, 42, tzinfo=UTC)  # the job's creation: a fixed point


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def runs(schedule: dict, after: datetime, n: int = 5) -> list[datetime]:
    return next_runs(Schedule.model_validate(schedule), ANCHOR, after, n)


def test_last_weekday_of_the_month_when_the_month_ends_on_a_weekend():
    got = runs({"type": "monthly", "mode": "last_weekday", "at": "06:00"}, at(2026, 1, 1))
    # Jan 30 (Sat 31), Feb 27 (Sat 28), Mar 31 (Tue), Apr 30 (Thu), May 29 (Sun 31).
    assert got == [
        at(2026, 1, 30, 6),
        at(2026, 2, 27, 6),
        at(2026, 3, 31, 6),
        at(2026, 4, 30, 6),
        at(2026, 5, 29, 6),
    ]


def test_last_day_in_leap_and_common_years():
    got = runs({"type": "monthly", "mode": "last_day", "at": "23:30"}, at(2027, 12, 31, 23, 31), 3)
    assert got == [at(2028, 1, 31, 23, 30), at(2028, 2, 29, 23, 30), at(2028, 3, 31, 23, 30)]
    assert runs({"type": "monthly", "mode": "last_day", "at": "00:00"}, at(2027, 2, 1), 1) == [
        at(2027, 2, 28)
    ]


def test_day_31_skips_the_months_without_it():
    got = runs({"type": "monthly", "mode": "day", "day": 31, "at": "01:00"}, at(2026, 1, 31, 2))
    assert got == [
        at(2026, 3, 31, 1),
        at(2026, 5, 31, 1),
        at(2026, 7, 31, 1),
        at(2026, 8, 31, 1),
        at(2026, 10, 31, 1),
    ]


@pytest.mark.parametrize(
    ("schedule", "cron"),
    [
        ({"type": "hourly", "mode": "at", "at": "06:05"}, "5 6 * * *"),
        ({"type": "daily", "mode": "weekdays", "at": "07:30"}, "30 7 * * 1-5"),
        ({"type": "weekly", "weekdays": ["sun", "wed"], "at": "18:00"}, "0 18 * * 0,3"),
        ({"type": "cron", "cron": "*/20 8-10 * * 1"}, "*/20 8-10 * * 1"),
    ],
)
def test_calendar_forms_match_cronsim(schedule, cron):
    after = at(2026, 2, 26, 12, 0)
    expected = []
    for moment in CronSim(cron, after.replace(tzinfo=None)):
        expected.append(moment.replace(tzinfo=UTC))
        if len(expected) == 8:
            break
    assert runs(schedule, after, 8) == expected


def test_intervals_are_anchored_not_started_from_now():
    every_90 = {"type": "hourly", "mode": "interval", "every": 1, "every_minutes": 30}
    # Anchor 09:17 → 10:47, 12:17, 13:47 … whatever the moment we ask.
    assert runs(every_90, at(2026, 1, 10, 11, 0), 3) == [
        at(2026, 1, 10, 12, 17),
        at(2026, 1, 10, 13, 47),
        at(2026, 1, 10, 15, 17),
    ]
    assert runs(every_90, at(2026, 1, 10, 12, 17), 1) == [at(2026, 1, 10, 13, 47)]
    assert runs({"type": "minutes", "every": 15}, at(2026, 1, 10, 9, 0), 2) == [
        at(2026, 1, 10, 9, 17),
        at(2026, 1, 10, 9, 32),
    ]
    assert runs({"type": "daily", "every": 3, "at": "06:00"}, at(2026, 1, 12), 2) == [
        at(2026, 1, 13, 6),
        at(2026, 1, 16, 6),
    ]
    assert runs({"type": "manual"}, at(2026, 1, 12)) == []


def test_a_restart_neither_shifts_nor_skips_and_missed_runs_are_caught_up_once():
    hourly = Schedule.model_validate({"type": "hourly", "mode": "interval", "every": 1})
    last = at(2026, 1, 10, 11, 17)  # the last run, from the history
    # The daemon restarts at 11:40: nothing is due until 12:17, as before the restart.
    assert due(hourly, ANCHOR, last, at(2026, 1, 10, 11, 40)) is None
    assert due(hourly, ANCHOR, last, at(2026, 1, 10, 12, 17, 3)) == at(2026, 1, 10, 12, 17)
    # Down from 12:00 to 16:30: four slots missed, one catch-up run for the latest.
    assert due(hourly, ANCHOR, last, at(2026, 1, 10, 16, 30)) == at(2026, 1, 10, 16, 17)
    assert due(hourly, ANCHOR, at(2026, 1, 10, 16, 17), at(2026, 1, 10, 16, 31)) is None
    # Without catch-up, a missed slot waits for the next one.
    assert due(hourly, ANCHOR, last, at(2026, 1, 10, 16, 30), catch_up=False) is None
    assert due(hourly, ANCHOR, last, at(2026, 1, 10, 16, 18), catch_up=False) == at(
        2026, 1, 10, 16, 17
    )


def test_last_slot_with_a_fake_clock_walks_every_slot():
    daily = Schedule.model_validate({"type": "daily", "mode": "weekdays", "at": "06:00"})
    clock, last, ran = at(2026, 2, 27, 0, 0), at(2026, 2, 26, 6), []
    while clock < at(2026, 3, 4):
        slot = due(daily, ANCHOR, last, clock)
        if slot:
            ran.append(slot)
            last = slot
        clock += timedelta(minutes=7)
    assert ran == [at(2026, 2, 27, 6), at(2026, 3, 2, 6), at(2026, 3, 3, 6)]
    assert last_slot(daily, ANCHOR, at(2026, 3, 1, 12)) == at(2026, 2, 27, 6)
    # A job never runs for a slot from before it existed.
    assert due(daily, at(2026, 3, 3, 7), None, at(2026, 3, 3, 8)) is None


@pytest.mark.parametrize(
    ("schedule", "words", "cron"),
    [
        ({"type": "manual"}, "manually (no schedule)", None),
        ({"type": "minutes", "every": 15}, "every 15 minutes", None),
        ({"type": "hourly", "every": 2, "every_minutes": 30}, "every 2 hours and 30 minutes", None),
        ({"type": "hourly", "mode": "at", "at": "6:05"}, "every day at 06:05 UTC", "5 6 * * *"),
        ({"type": "daily", "every": 3, "at": "22:00"}, "every 3 days at 22:00 UTC", None),
        (
            {"type": "daily", "mode": "weekdays", "at": "07:30"},
            "every weekday (Monday to Friday) at 07:30 UTC",
            "30 7 * * 1-5",
        ),
        (
            {"type": "weekly", "weekdays": ["fri", "mon"], "at": "08:00"},
            "every Monday and Friday at 08:00 UTC",
            "0 8 * * 1,5",
        ),
        (
            {"type": "monthly", "day": 31, "at": "01:00"},
            "on the 31st of every month at 01:00 UTC (months without that day are skipped)",
            "0 1 31 * *",
        ),
        (
            {"type": "monthly", "mode": "last_day", "at": "23:00"},
            "on the last day of every month at 23:00 UTC",
            "0 23 L * *",
        ),
        (
            {"type": "monthly", "mode": "last_weekday", "at": "06:00"},
            "on the last weekday of every month at 06:00 UTC",
            "0 6 LW * *",
        ),
    ],
)
def test_schedules_in_words_and_cron(schedule, words, cron):
    s = Schedule.model_validate(schedule)
    assert s.describe() == words
    assert s.cron_expression() == cron
