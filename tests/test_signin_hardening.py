"""The sign-in and the gate under attack, against the real studio (``app.py`` as ``runner up``
serves it): guesses sent in parallel get no more tries than the lock allows; a name that is no
user (or a disabled one) is answered exactly like a real one, in words and in time; only the
studio's own pages open its websocket; Sign out ends the session on the server; and a studio
with no users is open to this machine only, not through a proxy or a rebound DNS name."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time

import pytest
import requests
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from studio.config.store import ConfigStore
from studio.users import MAX_FAILURES, SLOWDOWN, add_user
from tests.helpers import serving_studio

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signin-studio")
    home = folder / "home"
    store = ConfigStore(home)
    for name in ("ana", "cy", "dee", "ed"):
        add_user(store, name, PASSWORD, "admin" if name == "ana" else "viewer")
    store.set_status("users", "ed", "disabled", source="cli")
    with serving_studio(home, folder) as url:
        yield url, home


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

    return outside_any_loop(connect())


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


@pytest.fixture(scope="module")
def open_studio(tmp_path_factory):
    """A laptop's studio: on 127.0.0.1, no users, no single sign-on, open to this machine."""
    folder = tmp_path_factory.mktemp("open-studio")
    with serving_studio(folder / "home", folder) as url:
        yield url


def test_an_open_studio_is_open_to_this_machine_only_not_through_a_proxy(open_studio):
    """No users on 127.0.0.1 means everyone is an admin, which is safe only for people on this
    machine: a request a reverse proxy forwarded (the way team.md puts the studio on the
    network) is from elsewhere, so it gets the sign-in page, which says there is nobody yet."""
    url = open_studio
    assert requests.get(f"{url}/jobs", allow_redirects=False, timeout=30).status_code == 200
    for proxied in ({"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-Proto": "https"}):
        answer = requests.get(f"{url}/jobs", headers=proxied, allow_redirects=False, timeout=30)
        assert answer.status_code == 303, proxied
        page = requests.get(f"{url}/signin", headers=proxied, timeout=30).text
        assert "has no users yet" in page and "<form" not in page


def run_home(url: str, host: str) -> str:
    """What the studio's home page draws for a browser that reached it as ``host`` (the
    websocket's script run, as the app's JavaScript drives it): every message, as text."""
    port = int(url.rsplit(":", 1)[1])

    async def run() -> str:
        seen = []
        async with websockets.connect(
            f"ws://{host}/_stcore/stream",
            origin=f"http://{host}",
            host="127.0.0.1",  # what the DNS of a rebinding site answers
            port=port,
            subprotocols=["streamlit"],
            open_timeout=20,
        ) as ws:
            rerun = BackMsg()
            rerun.rerun_script.query_string = ""
            await ws.send(rerun.SerializeToString())
            while True:
                message = ForwardMsg()
                message.ParseFromString(await asyncio.wait_for(ws.recv(), 30))
                seen.append(str(message))
                if message.WhichOneof("type") == "script_finished":
                    return "\n".join(seen)

    return outside_any_loop(run())


def test_an_open_studio_does_not_answer_another_name_dns_rebinding(open_studio):
    """A site whose DNS turns its name into 127.0.0.1 (DNS rebinding) is the studio's own
    origin in the browser: its script could drive the open studio and send the data home. The
    studio is open only to this machine's names, in the page gate and in the script run."""
    url = open_studio
    port = url.rsplit(":", 1)[1]
    assert "Start here" in run_home(url, f"127.0.0.1:{port}")  # a laptop: open
    assert "Start here" in run_home(url, f"localhost:{port}")
    rebound = run_home(url, f"rebind.example:{port}")
    assert "Start here" not in rebound and "has no users yet" in rebound
    answer = requests.get(
        f"{url}/jobs", headers={"Host": f"rebind.example:{port}"}, allow_redirects=False, timeout=30
    )
    assert answer.status_code == 303


def outside_any_loop(coroutine):
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running in the main thread for the whole session, where asyncio.run refuses."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
