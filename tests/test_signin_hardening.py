"""The sign-in page under attack, against the real studio (``app.py`` as ``runner up`` serves
it): guesses sent in parallel get no more tries than the lock allows, and a name that is no
user (or a disabled one) is answered exactly like a real one, in words and in time, so the page
tells nobody which names exist."""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
import time

import pytest
import requests

from studio.config.store import ConfigStore
from studio.users import MAX_FAILURES, SLOWDOWN, add_user
from tests.helpers import ROOT, wait_http
from tests.servers import free_port

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signin-studio")
    home = folder / "home"
    store = ConfigStore(home)
    for name in ("ana", "cy", "dee", "ed"):
        add_user(store, name, PASSWORD, "admin" if name == "ana" else "viewer")
    store.set_status("users", "ed", "disabled", source="cli")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    log = open(folder / "streamlit.log", "w")  # noqa: SIM115 - open while Streamlit runs
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"{url}/_stcore/health")
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def attempt(url: str, name: str, password: str) -> tuple[str, float]:
    """The sign-in page's alert for this name and password, and how long the answer took."""
    started = time.monotonic()
    answer = requests.post(
        f"{url}/signin",
        data={"name": name, "password": password},
        allow_redirects=False,
        timeout=60,
    )
    alert = re.search(r'role="alert">([^<]*)<', answer.text)
    return (alert[1] if alert else f"HTTP {answer.status_code}"), time.monotonic() - started


def test_guesses_sent_in_parallel_get_no_more_tries_than_the_lock_allows(studio):
    url, home = studio
    guesses = [f"guess number {n:03d}" for n in range(40)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = [a for a, _t in pool.map(lambda p: attempt(url, "cy", p), guesses)]
    tried = answers.count("Wrong name or password")
    assert tried == MAX_FAILURES, answers
    assert all(a.startswith("Too many failed sign-ins") for a in answers if a != answers[0])
    assert ConfigStore(home).get("users", "cy").locked_until is not None


def test_a_name_that_is_no_user_is_answered_like_a_real_one(studio):
    url, _home = studio
    seen = {}
    for name in ("dee", "nobody", "ed"):  # a user, no user, a disabled user
        answers = [attempt(url, name, f"not it {n}") for n in range(MAX_FAILURES + 1)]
        # the lock's time can differ by the minute the tries ended in
        seen[name] = [re.sub(r"\d\d:\d\d", "HH:MM", a) for a, _t in answers]
        assert answers[1][1] >= 2 * SLOWDOWN  # the second wrong try waits as long for each
    assert seen["nobody"] == seen["dee"] == seen["ed"]
    assert seen["dee"][0] == "Wrong name or password"
    assert seen["dee"][-1].startswith("Too many failed sign-ins")
