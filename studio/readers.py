"""Read records from files in batches: CSV, JSON, JSON Lines, and ZIP archives of those.

Downloads and files from FTP/SFTP servers are read as streams so that memory stays flat
whatever the file's size: CSV and JSON Lines yield batches of records as they are read; a JSON
document up to ``Limits.max_document`` bytes is one value, yielded whole for the content finder
to pick from, and a larger one is streamed record by record (ijson) along the content finder's
path. Nothing a file claims is trusted: a ZIP member is counted as it is inflated, against a
size cap and a compression ratio (a 300 KB archive may not become 300 MB), and a line longer
than ``Limits.max_line`` ends the read with a sentence instead of filling memory.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import gc
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from studio.errors import StudioError

BATCH = 1000
MB = 1024 * 1024
DELIMITERS = [",", ";", "\t", "|"]
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    encoding: str = "utf-8"
    header_row: bool = True
    quote_char: str = '"'


@dataclass(frozen=True)
class Limits:
    """What one file may cost, whatever it claims: the caps of ``docs/jobs.md``."""

    max_bytes: int | None = None  # decoded bytes of one file or ZIP member (None: no cap)
    max_ratio: float = 200.0  # a ZIP member's size over its compressed size, beyond 1 MB
    max_line: int | None = 16 * MB  # bytes between two line breaks, in CSV and JSON Lines
    max_document: int = 16 * MB  # a JSON document parsed whole; larger ones are streamed
    max_records: int = 10_000_000  # records streamed from one JSON document


# Digits made zeros, to find a run of 19 (a JSON integer orjson may read as a float).
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_PAUSE_FROM = 1 << 16  # bytes of JSON from which the garbage collector waits for the parse


def parse_json(data: bytes | str) -> Any:
    """``json.loads``, twice as fast: orjson, with the standard library's reading kept for
    what orjson reads otherwise. orjson refuses NaN, Infinity, a BOM, UTF-16 and lone
    surrogates, which ``json`` takes (and its errors are the ones reported), and reads an
    integer beyond 64 bits as a float: a text with a run of 19 digits or more anywhere (about
    0.2 ms a 400 KB page to look for) is read by ``json``, which keeps it exact.

    A large document is parsed with the cyclic garbage collector paused (``gc_paused``):
    every container it builds is new and alive, yet each few hundred of them made the
    collector walk them again, and now and then the whole heap (40% of the parse's time)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        if raw.translate(_DIGITS).find(_LONG_RUN) < 0:
            if len(raw) < _PAUSE_FROM:
                return orjson.loads(data)
            with gc_paused():
                return orjson.loads(data)
    except ValueError:  # orjson.JSONDecodeError
        pass
    return json.loads(data)


_pause_lock = threading.Lock()
_pausers = 0
_resume = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic collection by the cyclic garbage collector inside: for building one large
    acyclic value (a parsed document) that is alive until its end anyway. Counted, so that
    threads pausing at once resume it once, and only if it was running; what was allocated
    meanwhile is looked at by the next collection. (orjson holds the interpreter lock while it
    parses, so no other thread runs Python, or allocates, inside the pause.)"""
    global _pausers, _resume
    with _pause_lock:
        if _pausers == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _resume:
                gc.enable()


class _Guard(io.RawIOBase):
    """A stream that counts what passes: more than ``max_bytes`` in all, or more than
    ``max_line`` bytes without a line break, ends the read with a sentence. It only looks at
    each chunk's last line break (``rfind``), so it costs nothing measurable."""

    def __init__(self, raw: IO[bytes], name: str, limits: Limits, what: str = "the file"):
        self.raw, self.name, self.limits, self.what = raw, name, limits, what
        self.total = self.run = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.total += n
        cap = self.limits.max_bytes
        if cap is not None and self.total > cap:
            raise StudioError(
                f"{self.name}: {self.what} is larger than {cap / MB:,.0f} MB (max download size)"
            )
        if self.limits.max_line is None:
            return n
        last = data.rfind(b"\n")
        self.run = self.run + n if last < 0 else n - last - 1
        if self.run > self.limits.max_line:
            raise StudioError(
                f"{self.name}: a line is longer than {self.limits.max_line / MB:,.0f} MB; "
                "is this really a CSV or JSON Lines file?"
            )
        return n


def guarded(stream: IO[bytes], name: str, limits: Limits, what: str = "the file") -> IO[bytes]:
    return io.BufferedReader(_Guard(stream, name, limits, what), buffer_size=1 << 18)


def _text(stream: IO[bytes], encoding: str, name: str = "file") -> io.TextIOWrapper:
    # A UTF-8 file may start with a BOM (Excel writes one): utf-8-sig reads both.
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    text = io.TextIOWrapper(guarded(stream, name, Limits()), encoding=enc, newline="")
    # Read 256 KB at a time, not 8 KB: each read of an SFTP or FTP stream costs a Python call.
    text._CHUNK_SIZE = 1 << 18
    return text


def sniff_delimiter(sample: str) -> str | None:
    """The delimiter the first lines suggest, or None when they give no clue."""
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        counts = {d: sample.splitlines()[0].count(d) for d in DELIMITERS} if sample else {}
        best = max(counts, key=counts.get, default=None)
        return best if best and counts[best] else None


class CsvRows:
    """The rows of a CSV stream as lists of strings, in batches, read as the stream comes.

    Lists, not dicts: building a dict per row cost more than parsing the CSV itself, and a
    mapping compiled for the file's columns (``Mapper(columns=…)``) reads a row by index.
    ``header`` is known once the first batch is out: the file's first row, or column_1… when
    the file has no header row. A row wider than the header adds column_N names."""

    def __init__(
        self, stream: IO[bytes], options: CsvOptions, name: str = "file", batch: int = BATCH
    ):
        self.stream, self.options, self.name, self.batch = stream, options, name, batch
        self.header: list[str] = []

    def __iter__(self) -> Iterator[list[list[str]]]:
        options, name = self.options, self.name
        text = _text(self.stream, options.encoding, name)
        reader = csv.reader(text, delimiter=options.delimiter, quotechar=options.quote_char)
        try:
            first = next(reader, None)
            if first is None:
                return
            rows: list[list[str]] = []
            if options.header_row:
                self.header = [h.strip() for h in first]
                if len(self.header) == 1:
                    guess = sniff_delimiter(first[0])
                    if guess and guess != options.delimiter:
                        raise StudioError(
                            f"{name}: 1 column found with the delimiter "
                            f"{_NAMES.get(options.delimiter, repr(options.delimiter))}; the "
                            f"delimiter may be {guess!r} ({_NAMES[guess]})"
                        )
            else:
                self.header = [f"column_{i}" for i in range(1, len(first) + 1)]
                rows.append(first)
            width, size = len(self.header), self.batch
            for line in reader:
                if len(line) != width:
                    if not line:
                        continue
                    if len(line) < width:
                        line += [""] * (width - len(line))
                    else:
                        self.header += [f"column_{i}" for i in range(width + 1, len(line) + 1)]
                        width = len(self.header)
                rows.append(line)
                if len(rows) >= size:
                    yield rows
                    rows = []
            if rows:
                yield rows
        except UnicodeDecodeError as e:
            raise StudioError(
                f"{name}: byte {e.start} is not {options.encoding} text; choose the file's "
                "encoding (for example latin-1 or windows-1252)"
            ) from None
        except csv.Error as e:
            raise StudioError(f"{name}: not valid CSV at line {reader.line_num}: {e}") from None
        finally:
            text.detach()


def read_csv(
    stream: IO[bytes], options: CsvOptions, name: str = "file", batch: int = BATCH
) -> Iterator[list[dict]]:
    """Rows as dicts keyed by the header, in batches: for previews and downloads."""
    rows = CsvRows(stream, options, name, batch)
    for lines in rows:
        header = rows.header
        yield [dict(zip(header, line, strict=False)) for line in lines]


def read_jsonl(
    stream: IO[bytes], name: str = "file", batch: int = BATCH, limits: Limits = Limits()
) -> Iterator[list[Any]]:
    rows: list[Any] = []
    for number, line in enumerate(guarded(stream, name, limits), 1):
        if not line.strip():
            continue
        try:
            rows.append(parse_json(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StudioError(f"{name}: line {number} is not valid JSON ({e})") from None
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def read_json(stream: IO[bytes], name: str = "file") -> Any:
    try:
        return parse_json(stream.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StudioError(f"{name}: not valid JSON ({e})") from None


def stream_json(
    stream: IO[bytes], prefix: str, name: str, batch: int, limits: Limits
) -> Iterator[list[Any]]:
    """The records under ``prefix`` (ijson's notation: ``items.item``), in batches, without
    ever holding the document."""
    import ijson

    rows: list[Any] = []
    count = 0
    try:
        for record in ijson.items(stream, prefix, use_float=True):
            rows.append(record)
            count += 1
            if count > limits.max_records:
                raise StudioError(
                    f"{name}: more than {limits.max_records:,} records in one document "
                    "(max records per document)"
                )
            if len(rows) >= batch:
                yield rows
                rows = []
    except ijson.JSONError as e:
        raise StudioError(f"{name}: not valid JSON ({e})") from None
    if rows:
        yield rows


FORMATS = {".csv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_file(
    path: Path,
    fmt: str,
    options: CsvOptions,
    name: str = "file",
    batch: int = BATCH,
    *,
    limits: Limits = Limits(),
    stream_prefix: str | None = None,
) -> Iterator[tuple[str, Any]]:
    """Yield ("records", batch) for CSV, JSON Lines and streamed JSON, ("doc", value) for a
    JSON document read whole; a ZIP yields those of each member whose extension it knows, in
    archive order. ``stream_prefix`` (from the content finder) lets a JSON document larger
    than ``limits.max_document`` be streamed instead of refused."""
    if fmt == "zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise StudioError(f"{name}: not a ZIP archive") from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            known = [m for m in members if Path(m.filename).suffix.lower() in FORMATS]
            if not known:
                raise StudioError(
                    f"{name}: the ZIP holds no .csv, .json or .jsonl file "
                    f"({', '.join(m.filename for m in members) or 'it is empty'})"
                )
            for member in known:
                where = f"{name}:{member.filename}"
                _check_member(member, where, limits)
                with archive.open(member) as raw:
                    # Bytes only: a JSON member has no lines; CSV and JSON Lines check theirs.
                    count = dataclasses.replace(limits, max_line=None)
                    stream = guarded(raw, where, count, "the member, inflated,")
                    member_fmt = FORMATS[Path(member.filename).suffix.lower()]
                    yield from _read(
                        stream,
                        member_fmt,
                        options,
                        where,
                        batch,
                        limits,
                        stream_prefix,
                        member.file_size,
                    )
        return
    with open(path, "rb") as stream:
        size = path.stat().st_size
        yield from _read(stream, fmt, options, name, batch, limits, stream_prefix, size)


def _check_member(member: zipfile.ZipInfo, where: str, limits: Limits) -> None:
    """Refuse a member on what its header declares; ``_Guard`` checks what it really holds."""
    size, packed = member.file_size, max(member.compress_size, 1)
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise StudioError(
            f"{where}: the member is {size / MB:,.0f} MB inflated, more than the "
            f"{limits.max_bytes / MB:,.0f} MB allowed (max download size)"
        )
    if size > MB and size / packed > limits.max_ratio:
        raise StudioError(
            f"{where}: the member would inflate {size / packed:,.0f} times "
            f"({packed:,} bytes to {size:,}): refused as a ZIP bomb"
        )


def _read(stream, fmt, options, name, batch, limits, prefix, size) -> Iterator[tuple[str, Any]]:
    if fmt == "csv":
        for rows in read_csv(stream, options, name, batch):
            yield "records", rows
    elif fmt == "jsonl":
        for rows in read_jsonl(stream, name, batch, limits):
            yield "records", rows
    elif size <= limits.max_document:
        yield "doc", read_json(stream, name)
    elif prefix is not None:
        for rows in stream_json(stream, prefix, name, batch, limits):
            yield "records", rows
    else:
        raise StudioError(
            f"{name}: the JSON document is {size / MB:,.0f} MB, more than the "
            f"{limits.max_document / MB:,.0f} MB read whole; a content finder that names the "
            "list of records (such as $.items[*]) lets it be streamed"
        )
