"""Shared fixtures: every test gets its own STUDIO_HOME, so no test sees another's configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from studio.store import ConfigStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(path))
    monkeypatch.delenv("STUDIO_SECRET_KEY", raising=False)
    return path


@pytest.fixture
def store(home) -> ConfigStore:
    return ConfigStore(home)


def api_connection(name: str = "Shop API", **overrides) -> dict:
    """A valid API connection with OAuth 2.0 and a secret header, as a form would send it."""
    data = {
        "kind": "api",
        "name": name,
        "base_url": "https://api.example.com/v1",
        "auth": {
            "type": "oauth2",
            "token_url": "https://api.example.com/oauth/token",
            "client_id": "studio-client",
            "client_secret": "client-secret-value-42",
        },
        "headers": [{"name": "X-Api-Key", "value": "header-secret-value-7"}],
    }
    data.update(overrides)
    return data


def sftp_connection(name: str = "Supplier SFTP", **overrides) -> dict:
    data = {
        "kind": "file_server",
        "name": name,
        "protocol": "sftp",
        "host": "files.example.com",
        "username": "importer",
        "password": "sftp-password-value-9",
    }
    data.update(overrides)
    return data


def run_python(code: str, home: Path, **kwargs):
    """Start a separate Python process on the same store (the studio, CLI and runner are)."""
    import subprocess

    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, **kwargs)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sandbox:
    """The demo sandbox API served by uvicorn on 127.0.0.1, once per test session."""

    def __init__(self) -> None:
        import threading
        import time

        import uvicorn

        from runner.sandbox import SandboxState, create_app

        self.state = SandboxState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(self.state),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.02)

    def settings(self, **values) -> None:
        import requests

        requests.post(f"{self.url}/_sandbox/settings", json=values, timeout=5).raise_for_status()

    def fault(
        self, path: str, status: int, times: int = 1, retry_after: str | None = None, body: str = ""
    ) -> None:
        self.settings(
            fault={
                "path": path,
                "status": status,
                "times": times,
                "retry_after": retry_after,
                "body": body,
            }
        )

    def hits(self, path: str) -> int:
        import requests

        return requests.get(f"{self.url}/_sandbox/stats", timeout=5).json()["hits"].get(path, 0)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def sandbox_server():
    server = Sandbox()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The session's sandbox, reset to its defaults (and tokens cleared) for each test."""
    from studio.http import TOKENS

    sandbox_server.state.reset()
    TOKENS._tokens.clear()
    return sandbox_server


def point_demo_at(store: ConfigStore, sandbox_url: str) -> None:
    """The demo connection points at port 8765; point it at this session's sandbox instead."""
    store.modify(
        "connections",
        "Demo sandbox",
        lambda c: c.model_copy(
            update={
                "base_url": f"{sandbox_url}/api",
                "auth": c.auth.model_copy(update={"token_url": f"{sandbox_url}/oauth/token"}),
            }
        ),
        source="cli",
    )
