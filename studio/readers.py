"""Read records from files in batches: CSV, JSON, JSON Lines, and ZIP archives of those.

Downloads (and, later, files from FTP/SFTP servers) are read as streams so that memory stays
flat whatever the file's size: CSV and JSON Lines yield batches of records as they are read;
a JSON document is one value and is yielded whole for the content finder to pick from.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from studio.errors import StudioError

BATCH = 1000
DELIMITERS = [",", ";", "\t", "|"]
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    encoding: str = "utf-8"
    header_row: bool = True
    quote_char: str = '"'


def _text(stream: IO[bytes], encoding: str) -> io.TextIOWrapper:
    # A UTF-8 file may start with a BOM (Excel writes one): utf-8-sig reads both.
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    text = io.TextIOWrapper(stream, encoding=enc, newline="")
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
        text = _text(self.stream, options.encoding)
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


def read_jsonl(stream: IO[bytes], name: str = "file", batch: int = BATCH) -> Iterator[list[Any]]:
    rows: list[Any] = []
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StudioError(f"{name}: line {number} is not valid JSON ({e})") from None
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def read_json(stream: IO[bytes], name: str = "file") -> Any:
    try:
        return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StudioError(f"{name}: not valid JSON ({e})") from None


FORMATS = {".csv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_file(
    path: Path, fmt: str, options: CsvOptions, name: str = "file", batch: int = BATCH
) -> Iterator[tuple[str, Any]]:
    """Yield ("records", batch) for CSV and JSON Lines, ("doc", value) for JSON; a ZIP yields
    those of each member whose extension it knows, in archive order."""
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
                with archive.open(member) as stream:
                    member_fmt = FORMATS[Path(member.filename).suffix.lower()]
                    yield from _read(
                        stream, member_fmt, options, f"{name}:{member.filename}", batch
                    )
        return
    with open(path, "rb") as stream:
        yield from _read(stream, fmt, options, name, batch)


def _read(stream, fmt, options, name, batch) -> Iterator[tuple[str, Any]]:
    if fmt == "csv":
        for rows in read_csv(stream, options, name, batch):
            yield "records", rows
    elif fmt == "jsonl":
        for rows in read_jsonl(stream, name, batch):
            yield "records", rows
    else:
        yield "doc", read_json(stream, name)
