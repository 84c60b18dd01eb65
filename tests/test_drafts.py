"""Drafts in the studio's home: what a reload finds, keyed safely, private, and small."""

from __future__ import annotations

import stat

import pytest

from studio import drafts as drafts_module
from studio.drafts import DraftStore, valid_key


def test_a_draft_its_limits_and_its_test_are_kept_and_follow_a_saved_job(home):
    store = DraftStore(home)
    store.put("new-abc", {"name": "Products"}, None)
    store.put_limits("new-abc", {"pages": 2, "records": 50})
    assert store.put_test("new-abc", {"call": 1, "trace": {"records": [1, 2]}})
    again = DraftStore(home)  # another process, a reload
    assert again.get("new-abc") == {"name": "Products"} and again.base("new-abc") is None
    assert again.get_test("new-abc")["trace"]["records"] == [1, 2]
    again.move("new-abc", "job1")  # saved: the limits and the test follow the job
    assert again.get("new-abc") is None and again.get("job1") is None
    assert again.limits("job1") == {"pages": 2, "records": 50}
    assert again.get_test("job1")["call"] == 1 and again.get_test("new-abc") is None
    mode = stat.S_IMODE((home / "drafts" / "job1.test.json").stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE((home / "drafts" / "job1.json").stat().st_mode) == 0o600


def test_dropping_a_draft_keeps_the_jobs_limits_and_last_test(home):
    store = DraftStore(home)
    store.put("job1", {"name": "x"}, "digest")
    store.put_limits("job1", {"pages": 3, "records": 10})
    store.put_test("job1", {"call": 1})
    store.drop("job1")
    assert store.get("job1") is None and store.base("job1") is None
    assert store.limits("job1") == {"pages": 3, "records": 10} and store.get_test("job1")


@pytest.mark.parametrize("key", ["../configs", "a/b", "", "x" * 65, "new-abc.json", "a b"])
def test_a_key_from_the_url_cannot_leave_the_drafts(home, key):
    store = DraftStore(home)
    assert not valid_key(key)
    assert store.get(key) is None and store.get_test(key) is None
    with pytest.raises(ValueError):
        store.put(key, {}, None)
    assert not store.put_test(key, {"call": 1})


def test_a_test_too_large_to_keep_stays_in_the_session_only(home, monkeypatch):
    monkeypatch.setattr(drafts_module, "MAX_TEST_BYTES", 100)
    store = DraftStore(home)
    assert not store.put_test("job1", {"records": ["x" * 200]})
    assert store.get_test("job1") is None
