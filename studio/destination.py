"""Write mapped rows as a CSV file to a file server (seed 003's file destination).

Rows are written to a local temporary file as they come, with Celigo's CSV options, then
uploaded under a temporary name and renamed (``FileClient.upload``), so a reader on the server
never sees half a file. Values that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-`` or ``@``) are prefixed with a quote unless the option is turned off.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.config.jobs import CsvDestination
from studio.files import FileClient

_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def file_name(template: str, *, job: str, run_id: str, now: datetime) -> str:
    """Fill ``{{timestamp}}``, ``{{date}}``, ``{{job}}`` and ``{{run_id}}`` in a file name."""
    safe_job = re.sub(r"[^A-Za-z0-9._-]+", "-", job).strip("-") or "job"
    values = {
        "timestamp": now.strftime("%Y%m%dT%H%M%SZ"),
        "date": now.strftime("%Y-%m-%d"),
        "job": safe_job,
        "run_id": run_id,
    }
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def neutralize(text: str) -> str:
    """``text`` with a quote before it if a spreadsheet would run it as a formula (it starts
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return and is not a number)."""
    return "'" + text if _FORMULA.match(text) and not _NUMBER.match(text) else text


def for_people(values: Iterable) -> list:
    """A row for a CSV file people open (run files, downloads): text a spreadsheet would run as
    a formula (such as ``=HYPERLINK(…)``) gets the quote the CSV destination gives it. Numbers
    stay numbers."""
    return [neutralize(v) if isinstance(v, str) else v for v in values]


def people_csv(rows: list[dict]) -> str:
    """Rows as CSV text for a download, formulas neutralised (``for_people``)."""
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(for_people([r.get(c) for c in columns]) for r in rows)
    return buffer.getvalue()


def cell(value: Any, dest: CsvDestination) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if dest.replace_tab_with_space:
        text = text.replace("\t", " ")
    if dest.replace_newline_with_space:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    if dest.neutralize_formulas and isinstance(value, str):
        text = neutralize(text)
    return text


class CsvFile:
    """A local CSV file being written, batch by batch, to be uploaded when complete."""

    def __init__(self, dest: CsvDestination, columns: list[str], folder: Path | None = None):
        self.dest = dest
        self.columns = columns
        # Open until deliver() or discard(): rows are written as they come, batch by batch.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", newline="", encoding="utf-8", suffix=".csv", dir=folder, delete=False
        )
        self.path = Path(handle.name)
        self._file = handle
        self._writer = csv.writer(
            handle,
            delimiter=dest.column_delimiter,
            lineterminator=dest.row_delimiter,
            quoting=csv.QUOTE_ALL if dest.wrap_with_quotes else csv.QUOTE_MINIMAL,
        )
        self.rows = 0
        if dest.include_header:
            self._writer.writerow(columns)

    def write(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._writer.writerow([cell(row.get(c), self.dest) for c in self.columns])
            self.rows += 1

    def close(self) -> None:
        self._file.close()

    def deliver(self, client: FileClient, *, job: str, run_id: str, now: datetime) -> str:
        """Upload to ``folder/file name``; returns the path written (relative to the root)."""
        self.close()
        name = file_name(self.dest.file_name, job=job, run_id=run_id, now=now)
        target = posixpath.join(self.dest.folder, name)
        if self.dest.folder.strip("/"):
            client.makedirs(self.dest.folder)
        with open(self.path, "rb") as stream:
            client.upload(stream, target)
        return target

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
