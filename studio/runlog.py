"""A run's log as people read it: a timeline of (time, step, message).

A run writes ``run.log`` as it goes, one JSON object per line (``runs._JobRun._count``): a
request (``exchange``), a page of records, a log line or a pagination stop, each with its time.
Shown as they are, those objects are a table of keys with empty cells; here each becomes one
line a person reads: when (HH:MM:SS, UTC), what kind of step (request, page, file, stop, error,
destination, note) and a sentence. Kept out of the page so that it is tested without Streamlit,
and so that the CLI or the REST API can say a log the same way.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass
from pathlib import Path

from studio.runhistory import plural

# What the file source says of a file (studio/filesource.py): "<path>: reading", and
# "<path>: 10 records, 10 rows, 0 rejects[, moved to …]" once it is committed.
_FILE_SAID = re.compile(r": reading$|: [\d,]+ records, [\d,]+ rows, [\d,]+ rejects")


@dataclass(frozen=True)
class Entry:
    time: str  # HH:MM:SS (UTC), or "" when the line had no time
    step: str
    message: str


def entry(line: dict) -> Entry:
    """One line of run.log (a parsed JSON object) as a timeline entry; fields that are absent
    or null are left out of the message, never written as "None"."""
    at = str(line.get("at") or "")
    time = at[11:19] if len(at) >= 19 else at
    kind = line.get("kind")
    if kind == "exchange":
        return Entry(time, "request", _request(line))
    if kind == "page":
        return Entry(time, "page", _page(line))
    message = str(line.get("message") or "")
    if kind == "stop":
        return Entry(time, "stop", message)
    return Entry(time, *_said(message))


def _request(line: dict) -> str:
    call = f"{line['label']}: " if line.get("label") else ""
    what = " ".join(str(line[k]) for k in ("method", "url") if line.get(k))
    status = line.get("status")
    text = f"{call}{what} → {status if status else 'no answer'}"
    if line.get("ms") is not None:
        text += f" · {line['ms']:,} ms"
    if line.get("size"):
        text += f" · {plural(line['size'], 'byte')}"
    attempts = line.get("attempts") or 1
    if attempts > 1:
        text += f" · {plural(attempts, 'attempt')}"
        retries = [str(r) for r in line.get("retries") or [] if r]
        text += f" ({'; '.join(retries)})" if retries else ""
    if line.get("error"):
        text += f" · {line['error']}"
    return text


def _page(line: dict) -> str:
    records = line.get("records")
    counted = plural(records, "record") if isinstance(records, int) else "a page"
    return f"{line['call']}: {counted}" if line.get("call") else counted


def _said(message: str) -> tuple[str, str]:
    """The step of a log line, from what the run and its sources say."""
    if message.startswith("failed: "):
        return "error", message.removeprefix("failed: ")
    if ": failed: " in message or message.startswith("the destination file was not written"):
        return "error", message
    if re.search(r": stopped after [\d,]+ page", message):  # the paginator's reason to stop
        return "stop", message
    if message.startswith("Wrote the rows to "):
        return "destination", message
    if _FILE_SAID.search(message):
        return "file", message
    return "note", message


def timeline(path: Path | str, limit: int = 2000) -> tuple[list[Entry], int]:
    """The last ``limit`` entries of the run.log at ``path``, and how many lines it holds (a
    fan-out run logs thousands of requests; the page shows the end and says how many). A line
    that is not JSON (the last one, while the run is writing it) is skipped."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    total = 0
    last: collections.deque[str] = collections.deque(maxlen=limit)
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            if raw.strip():
                total += 1
                last.append(raw)
    entries = []
    for raw in last:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            entries.append(entry(line))
    return entries, total
