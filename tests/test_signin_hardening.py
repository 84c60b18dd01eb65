"""The sign-in page under attack, against the real studio (``app.py`` as ``runner up`` serves
it): guesses sent in parallel get no more tries than the lock allows, and a name that is no
user (or a disabled one) is answered exactly like a real one, in words and in time, so the page
tells nobody which names exist."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import subprocess
import sys
import time

import pytest
import requests
import websockets

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


def open_stream(url: str, origin: str, cookie: str) -> str:
    """Open the studio's websocket (where the pages run) as a page of ``origin`` would, with
    the browser's session cookie: "open", or why it was refused."""

    async def connect() -> str:
        try:
            async with websockets.connect(
                url.replace("http://", "ws://") + "/_stcore/stream",
                origin=origin,
                additional_headers={"Cookie": f"studio_session={cookie}"},
                subprotocols=["streamlit"],
                open_timeout=20,
            ):
                return "open"
        except websockets.InvalidStatus as e:
            return f"HTTP {e.response.status_code}"

    return asyncio.run(connect())


def test_a_page_of_another_port_of_the_host_cannot_drive_the_studio(studio):
    """Browsers send the session cookie with a websocket opened by any page of the same site,
    and a host's other ports are the same site; Streamlit lets any port of localhost, 127.0.0.1
    or the machine's own addresses in. Only the studio's own origin may open its websocket."""
    url, _home = studio
    form = {"name": "ana", "password": PASSWORD}
    cookie = requests.post(f"{url}/signin", data=form, allow_redirects=False, timeout=30).cookies
    token = cookie["studio_session"]
    assert open_stream(url, url, token) == "open"
    for other in ("http://127.0.0.1:9", url.replace("127.0.0.1", "localhost"), "null"):
        assert open_stream(url, other, token) == "HTTP 403", other


def test_sign_out_ends_the_session_on_the_server_not_only_in_the_browser(studio):
    """A copy of the cookie taken before Sign out (another browser, a proxy's log) opens
    nothing afterwards; the person's other sessions go on."""
    url, home = studio
    form = {"name": "ana", "password": PASSWORD}

    def session() -> str:
        answer = requests.post(f"{url}/signin", data=form, allow_redirects=False, timeout=30)
        return answer.cookies["studio_session"]

    def page_load(token: str) -> int:
        cookies = {"studio_session": token}
        return requests.get(
            f"{url}/jobs", cookies=cookies, allow_redirects=False, timeout=30
        ).status_code

    kept, other = session(), session()
    assert page_load(kept) == page_load(other) == 200
    out = requests.get(f"{url}/auth/logout", cookies={"studio_session": kept}, timeout=30)
    assert "studio_session=;" in out.history[0].headers["set-cookie"]
    assert page_load(kept) == 303  # to the sign-in page
    assert page_load(other) == 200
    assert ConfigStore(home).audit("users", "ana")[0]["user"] == "ana"
