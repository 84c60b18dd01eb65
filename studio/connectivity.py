""" "Test connection": can we log in and reach the server? One sentence either way.

For a file server: resolve, connect, start TLS, log in and list the root folder. For an API:
fetch a token where there is one, then call the base URL. Any answer other than
401/403 means the server is reachable and accepts the credentials (many APIs answer 404 at their
root); what failed is named: DNS, refused, TLS, timeout, the token endpoint's 4xx with its body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.config.connections import ApiConnection, FileServerConnection
from studio.config.store import studio_home
from studio.errors import StudioError
from studio.files import FileServerError, connect
from studio.http import HttpClient, HttpError
from studio.runhistory import plural


@dataclass
class Check:
    ok: bool
    message: str
    exchanges: list[dict] = field(default_factory=list)


def check_connection(conn: ApiConnection | FileServerConnection, home: Path | None = None) -> Check:
    """``home`` (default ``STUDIO_HOME``) holds the pinned SFTP host keys (``known_hosts``)."""
    if isinstance(conn, FileServerConnection):
        return _check_file_server(conn, home or studio_home())
    exchanges: list[dict] = []
    target = conn.test_path or conn.base_url
    with HttpClient(
        conn, retries=1, retry_after_max=2.0, on_exchange=lambda e: exchanges.append(e.as_dict())
    ) as client:
        try:
            response = client.request("Test", "GET", client.url(target), fail=False)
        except (HttpError, StudioError) as e:
            return Check(False, f"{conn.name}: {str(e).removeprefix('Test: ')}", exchanges)
    status = response.status
    excerpt = client.mask(response.content[:200].decode("utf-8", "replace").strip())
    if status in (401, 403):
        return Check(
            False,
            f"{conn.name}: the API refused the credentials ({status} {response.reason}: {excerpt})",
            exchanges,
        )
    if status >= 500 or (conn.test_path and status >= 400):
        return Check(
            False,
            f"{conn.name}: {target} answered {status} {response.reason}"
            + (f": {excerpt}" if excerpt else ""),
            exchanges,
        )
    how = "" if status < 400 else f" (the base URL itself answers {status} {response.reason})"
    auth = " and the token endpoint issued a token" if conn.auth.type == "oauth2" else ""
    if conn.test_path:
        return Check(
            True,
            f"{conn.name}: connected{auth}; {target} accepted the credentials ({status})",
            exchanges,
        )
    unproven = (
        "; set a test path to prove the credentials"
        if conn.auth.type in ("basic", "bearer", "api_key")
        else ""
    )
    return Check(
        True,
        f"{conn.name}: connected{auth}; {conn.base_url} is reachable{how}{unproven}",
        exchanges,
    )


def _check_file_server(conn: FileServerConnection, home: Path) -> Check:
    """Resolve, connect, (TLS,) log in, list the root folder: the message names the step."""
    try:
        with connect(conn, home, timeout=15) as client:
            entries = client.list()
    except FileServerError as e:
        return Check(False, f"{conn.name}: {e}")
    folders = sum(e.is_dir for e in entries)
    return Check(
        True,
        f"{conn.name}: logged in to {conn.target}; the root folder holds "
        f"{plural(folders, 'folder')} and {plural(len(entries) - folders, 'file')}",
    )
