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
