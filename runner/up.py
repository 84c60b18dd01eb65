"""``python -m runner up``: the embedded default, everything a new user needs in one command.

Starts the studio (Streamlit), the runner daemon (``serve``) and the demo sandbox API as child
processes on the store in ``STUDIO_HOME``, loads the demo configs into a brand-new store, and
stops every child on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner.daemon import hold_home
from studio.config.files import seed_examples
from studio.config.store import ConfigStore
from studio.errors import StudioError
from studio.private import private_dir

ROOT = Path(__file__).resolve().parent.parent


def studio_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "Home.py"),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


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
        os.close(hold_home(private_dir(store.home)))
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if demo:
        loaded = [o for o in seed_examples(store) if o.action == "create"]
        if loaded:
            print(f"loaded {len(loaded)} demo config(s) into {store.path}")
    env = {**os.environ, "STUDIO_HOME": str(store.home)}
    children = [
        subprocess.Popen(studio_command(host, port), cwd=ROOT, env=env),
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
