"""The PostgreSQL the stores use when ``STUDIO_DATABASE_URL`` is set (issue 17): its URL, checked
once, and one connection pool per process.

The pool is psycopg's own (``psycopg_pool``, in the ``scale`` extra): it is thread-safe (the
studio's pages, the daemon's and the REST API's threads share it), checks a connection before
lending it again after the server restarted, and caps how many connections a process opens: a
cache of connections written here would have to do all three. A pool is made per process (a
Celery worker forks after import, and a connection cannot cross a fork) and per URL (the tests
give each module a database of its own).

A run's row writer does not borrow from the pool: its staging tables are temporary tables of a
session that lasts the whole run (``studio.pgrows``), so it opens its own connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from studio.errors import StudioError

ENV = "STUDIO_DATABASE_URL"
POOL_SIZE = int(os.environ.get("STUDIO_DATABASE_POOL", "10"))  # connections per process, at most
CONNECT_TIMEOUT = 10  # seconds to reach the server before saying it cannot be reached

_pools: dict[tuple[int, str], object] = {}
_ready: set[tuple[int, str, str]] = set()  # (pid, url, what): schemas made by this process
_lock = threading.Lock()


def database_url() -> str:
    """``STUDIO_DATABASE_URL``, or "" when the stores are SQLite files (the default); a value
    that is not a PostgreSQL URL is refused with the variable's name."""
    url = os.environ.get(ENV, "").strip()
    if url and urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise StudioError(
            f"{ENV} must be a postgresql:// URL (postgresql://user:password@host:5432/db), "
            f"not {shown(url)!r}"
        )
    return url


def shown(url: str) -> str:
    """The URL without its password, as errors and logs may show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def unreachable(url: str, error: Exception) -> StudioError:
    return StudioError(
        f"the PostgreSQL server of {ENV} ({shown(url)}) cannot be reached: {error}".strip()
    )


def pool(url: str | None = None):
    """This process's pool for ``url`` (``database_url()`` when None), opened on first use."""
    from psycopg_pool import ConnectionPool, PoolTimeout

    url = url or database_url()
    key = (os.getpid(), url)
    found = _pools.get(key)
    if found is not None:
        return found
    with _lock:
        if key not in _pools:
            reason = _first_error(url)  # fast: the pool would retry until its timeout
            if reason is not None:
                raise unreachable(url, reason)
            made = ConnectionPool(
                url,
                min_size=1,
                max_size=max(POOL_SIZE, 2),
                open=False,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                check=ConnectionPool.check_connection,
                name=f"studio-{os.getpid()}",
            )
            try:
                made.open(wait=True, timeout=CONNECT_TIMEOUT)
            except PoolTimeout as e:
                made.close()
                raise unreachable(url, e) from None
            _pools[key] = made
    return _pools[key]


def close_pools() -> None:
    """Close this process's pools: their threads would otherwise go on trying to reconnect,
    and log each try, once the server is gone (a test session stopping its own server)."""
    with _lock:
        for key in [k for k in _pools if k[0] == os.getpid()]:
            _pools.pop(key).close()


def _first_error(url: str) -> Exception | None:
    """Why a connection fails, or None (the pool would only say that it timed out)."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except psycopg.Error as e:
        return e
    return None


def connect(url: str | None = None, **kw):
    """A connection of its own (not the pool's), for a session that lasts: a run's writer."""
    import psycopg

    url = url or database_url()
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, **kw)
    except psycopg.OperationalError as e:
        raise unreachable(url, e) from None


def ensure_schema(url: str, what: str, make: Callable[[object], None]) -> None:
    """Run ``make(connection)`` once per process and URL (``what`` names it), in a transaction
    holding an advisory lock, so that two processes starting at once do not race on
    ``CREATE … IF NOT EXISTS`` (which is not safe against itself)."""
    key = (os.getpid(), url, what)
    if key in _ready:
        return
    with pool(url).connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"studio-schema-{what}",))
        make(conn)
    _ready.add(key)


def forget_schemas() -> None:
    """Make the schemas again on next use (the tests empty a database between tests)."""
    _ready.clear()
