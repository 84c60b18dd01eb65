"""Running saved jobs, whatever their kind: the entry points the CLI, the studio and (later) the
runner daemon share. Each kind has its own source (an API call chain, CSV files from a server);
here a saved job is loaded with its connection and sent to the right one."""

from __future__ import annotations

from studio.engine import Trace, preview
from studio.filesource import preview_file
from studio.jobs import ApiJob, FileJob
from studio.models import ApiConnection, FileServerConnection
from studio.store import ConfigStore


def load_job(
    store: ConfigStore, ref: str
) -> tuple[ApiJob | FileJob, ApiConnection | FileServerConnection]:
    """A saved job and its connection, secrets in clear, ready for a preview or a run."""
    job = store.get("jobs", ref, reveal=True)
    conn = store.get("connections", job.connection_id, reveal=True)
    return job, conn


def preview_saved(
    store: ConfigStore,
    ref: str,
    *,
    up_to_call: int | None = None,
    max_pages: int = 5,
    max_records: int = 500,
) -> Trace:
    """Preview a saved job of any kind; writes nothing, moves no file."""
    job, conn = load_job(store, ref)
    if isinstance(job, FileJob):
        return preview_file(job, conn, store.home, max_records=max_records)
    return preview(job, conn, up_to_call=up_to_call, max_pages=max_pages, max_records=max_records)
