"""``python -m runner up``: the embedded default, everything a new user needs in one command.

Starts the studio (Streamlit), the runner daemon (``serve``) and the demo sandbox API as child
processes on the store in ``STUDIO_HOME``, loads the demo configs into a brand-new store, and
stops every child on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from runner.daemon import hold_home
from studio.config.base import ConfigModel
from studio.config.files import EXAMPLES, seed_examples
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.private import private_dir
from studio.runhistory import plural
from studio.sessions import is_local
from studio.sso import sso_configured

ROOT = Path(__file__).resolve().parent.parent
DEMO_SANDBOX = "http://127.0.0.1:8765"  # where the shipped demo connections point


def secrets_files(home: Path) -> list[Path]:
    """Where the studio reads Streamlit's secrets (``[auth]`` for single sign-on, ``[access]``
    for its roles): Streamlit's own two places, then ``secrets.toml`` in the home, which wins."""
    return [Path.home() / ".streamlit" / "secrets.toml", ROOT / ".streamlit" / "secrets.toml",
            home / "secrets.toml"]  # fmt: skip


def read_secrets(home: Path) -> dict:
    """The secrets as the studio will see them (later files win, section by section)."""
    merged: dict = {}
    for path in secrets_files(home):
        if path.is_file():
            try:
                merged |= tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, OSError) as e:
                raise StudioError(f"{path}: {e}") from None
    return merged


def refusal(store: ConfigStore, host: str) -> str | None:
    """Why ``up`` must not start: a studio that answers the network with nobody to sign in
    would let anyone who reaches it change connections, run jobs and read the data."""
    sso = sso_configured(read_secrets(store.home))
    if is_local(host) or sso or store.list("users"):
        return None
    return (
        f"the studio would listen on {host} with no users and no single sign-on, open to "
        "anyone who reaches it. Add an admin first: python -m runner users add NAME --role "
        "admin (or listen on 127.0.0.1)"
    )


def print_access(store: ConfigStore) -> None:
    if not store.list("users"):
        print(
            "No users yet: the studio is open on this machine only. To share it, add the first "
            "admin (python -m runner users add NAME --role admin) and see docs/team.md"
        )


def studio_command(host: str, port: int, home: Path) -> list[str]:
    # No file watcher: Streamlit's watchdog observer watches the folder of Home.py recursively,
    # so it walked (and logged) all of .venv and data/ whatever server.folderWatchBlacklist says
    # (that list only filters which imported modules are watched). Watching only serves
    # rerun-on-save while editing the code; pages are found when the studio starts.
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        *(a for f in secrets_files(home) for a in ("--secrets.files", str(f))),
    ]  # fmt: skip


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _demo_ids(folder: Path = EXAMPLES) -> set[str]:
    """The shipped demo connections that talk to the demo sandbox."""
    docs = (json.loads(p.read_text()) for p in (folder / "connections").glob("*.json"))
    return {d["id"] for d in docs if str(d.get("base_url", "")).startswith(DEMO_SANDBOX + "/")}


def _sandbox_of(store: ConfigStore, conn: ConfigModel) -> str | None:
    """The sandbox origin a demo connection points at while it is ``up``'s to move: the shipped
    one, or one an earlier ``up`` set (the last change of its addresses was the runner's).
    None once anyone else changed them: an analyst's edit wins."""
    origin = _origin(conn.base_url)
    if origin == DEMO_SANDBOX:
        return origin
    for entry in store.audit("connections", conn.id):  # newest first
        if {c["field"] for c in entry["changes"]} & {"base_url", "auth.token_url"}:
            return origin if entry["source"] == "runner" else None
    return None


def _moved(conn: ConfigModel, origin: str, url: str) -> ConfigModel:
    """``conn`` with its base URL and token URL at ``url`` instead of ``origin``."""
    auth = conn.auth
    if getattr(auth, "token_url", "").startswith(origin + "/"):
        auth = auth.model_copy(update={"token_url": url + auth.token_url[len(origin) :]})
    return conn.model_copy(update={"base_url": url + conn.base_url[len(origin) :], "auth": auth})


def point_demo_at_sandbox(store: ConfigStore, port: int) -> list[str]:
    """Point the demo connections at the sandbox ``up`` serves on ``port``; their names."""
    url, demo_ids, moved = f"http://127.0.0.1:{port}", _demo_ids(), []
    for conn in store.list("connections"):
        origin = _sandbox_of(store, conn) if conn.id in demo_ids else None
        if origin not in (None, url):
            store.modify(
                "connections", conn.id, lambda c, o=origin: _moved(c, o, url), source="runner"
            )
            moved.append(conn.name)
    return moved


def up(
    store: ConfigStore,
    *,
    host: str,
    port: int,
    demo: bool = True,
    sandbox_port: int | None = 8765,
    api_port: int = 8780,
) -> int:
    try:  # say it here, before the studio starts, rather than as a child's last words
        if why := refusal(store, host):
            raise StudioError(why)
        os.close(hold_home(private_dir(store.home)))
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if demo:
        loaded = [o for o in seed_examples(store) if o.action == "create"]
        if loaded:
            print(f"loaded {plural(len(loaded), 'demo config')} into {store.path}")
    if sandbox_port:
        for name in point_demo_at_sandbox(store, sandbox_port):
            print(f"{name!r} points at the demo sandbox on port {sandbox_port}")
    env = {**os.environ, "STUDIO_HOME": str(store.home)}
    children = [
        subprocess.Popen(studio_command(host, port, store.home), cwd=ROOT, env=env),
        subprocess.Popen(
            [sys.executable, "-m", "runner", "serve", "--grace", "8", "--api-port", str(api_port)],
            cwd=ROOT,
            env=env,
        ),
    ]
    if sandbox_port:
        sandbox = [sys.executable, "-m", "runner", "sandbox", "--port", str(sandbox_port)]
        children.append(subprocess.Popen(sandbox, cwd=ROOT, env=env))
    print(f"Connector Studio: http://{host}:{port}  (data in {store.home}; Ctrl-C stops)")
    print(f"REST API: http://127.0.0.1:{api_port}/v1 (tokens: python -m runner api-token create)")
    print_access(store)

    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        ended = [c for c in children if c.poll() is not None]
        if ended:
            code = ended[0].returncode or 1
            name = " ".join(ended[0].args[2:4])
            print(f"{name} stopped with status {ended[0].returncode}", file=sys.stderr)
            break
        time.sleep(0.3)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping else code
