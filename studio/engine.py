"""The import engine: run a job's chain of calls and yield its records in batches.

A run and a preview are the same code (``Chain``); a preview only adds limits and collects a
trace. Calls run in order. Each call is sent once per combination of the multi-valued variables
it uses (fan-out), performs its behavior (one request, polling, a download, or pages), and its
responses feed its variables; the responses of the last call go through the content finder and
become records. Everything the chain does is reported as events (requests, pages, log lines,
stops) so that the studio can draw it, the runner log it and the tests assert it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from studio.children import job_mapper
from studio.config.connections import ApiConnection
from studio.config.jobs import (
    CREDENTIAL_NAME,
    PLACEHOLDER,
    ApiJob,
    Call,
    DownloadBehavior,
    PaginationBehavior,
    RetryBehavior,
)
from studio.entities import entity
from studio.errors import StudioError
from studio.http import Exchange, HttpClient, HttpError, Response
from studio.jsonpath import JsonPathError, compile_path, leaf_paths, records_of
from studio.paginators import Page, paginator_for
from studio.readers import CsvOptions, read_file
from studio.readers import Limits as ReadLimits

Event = dict[str, Any]
PREVIEW_PAGES, PREVIEW_RECORDS = 5, 500  # what a test reads unless told otherwise
KEEP_DOCS = 100  # responses of a call kept for the next one; the last call's are never kept
WAIT_STEP = 0.25  # seconds between two checks of the deadline while polling


@dataclass
class Limits:
    """Caps for a preview; a run has none (but each pagination's own ``max_pages``)."""

    max_pages: int | None = None
    max_records: int | None = None
    max_fanout: int | None = None


def render_json(template: str, values: dict[str, Any]) -> str:
    """Fill ``{name}`` in a JSON body: inside a string the value is escaped into the string,
    outside one (``{"id": {id}}``) it becomes a JSON value of its own."""
    out, i, in_string = [], 0, False
    while i < len(template):
        c = template[i]
        if in_string and c == "\\":
            out.append(template[i : i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        m = PLACEHOLDER.match(template, i) if c == "{" else None
        if m and m.group(1) in values:
            value = values[m.group(1)]
            out.append(json.dumps(str(value))[1:-1] if in_string else json.dumps(value))
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def fill(text: str, values: dict[str, Any], quote_values: bool = False) -> str:
    def sub(m) -> str:
        if m.group(1) not in values:
            return m.group(0)
        v = values[m.group(1)]
        v = "" if v is None else str(v)
        return quote(v, safe="") if quote_values else v

    return PLACEHOLDER.sub(sub, text)


@dataclass
class Chain:
    """One execution of a job's calls against one connection."""

    job: ApiJob
    conn: ApiConnection
    client: HttpClient
    limits: Limits = field(default_factory=Limits)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    last_success_at: str = ""
    on_event: Callable[[Event], None] = lambda _e: None
    workdir: Path | None = None

    def __post_init__(self) -> None:
        self.finder = compile_path(self.job.content_finder)
        self.started = datetime.now(UTC).replace(microsecond=0)
        self.records_seen = 0
        self.previous_docs: list[Any] = []

    def log(self, message: str, **data: Any) -> None:
        self.on_event({"kind": "log", "message": message, **data})

    def stop(self, message: str) -> None:
        self.on_event({"kind": "stop", "message": message})

    # --- the chain ---------------------------------------------------------------------------

    def batches(self, up_to_call: int | None = None) -> Iterator[list[Any]]:
        """Record batches of the last call (``up_to_call``, 1-based, or the job's last)."""
        calls = self.job.calls[: up_to_call or len(self.job.calls)]
        self._last_call = calls[-1] if calls else None
        variables: dict[str, list[Any]] = {}
        builtins = {
            "now": self.started.isoformat().replace("+00:00", "Z"),
            "run_id": self.run_id,
            "last_success_at": self.last_success_at,
        }
        for index, call in enumerate(calls, 1):
            last = index == len(calls)
            compiled = [(v.name, v.path, compile_path(v.path)) for v in call.variables]
            secret = {v.name for v in call.variables if v.secret}
            collected: dict[str, list[Any]] = {name: [] for name, _p, _c in compiled}
            docs: list[Any] = []
            # Responses are kept only for a next call that downloads what a JSONPath finds.
            following = calls[index].behavior if not last else None
            keep = isinstance(following, DownloadBehavior) and following.url_source.startswith("$")
            self.client.secret_fields = [c for name, _p, c in compiled if name in secret]
            for binding in self._bindings(index, call, variables, builtins):
                for kind, value in self._perform(index, call, binding):
                    if last:
                        self.on_event(
                            {
                                "kind": "document",
                                "call": index,
                                "value": value,
                                "records": kind == "records",
                            }
                        )
                    if kind == "doc":
                        if keep and len(docs) < KEEP_DOCS:
                            docs.append(value)  # for a download whose URL is a JSONPath
                        found = {}
                        for name, _path, path in compiled:
                            matches = path.values(value)
                            collected[name].extend(matches)
                            self._check_values(index, name, collected[name])
                            found[name] = matches if len(matches) != 1 else matches[0]
                        if found:
                            self.on_event({"kind": "variables", "call": index, "values": found})
                        records = records_of(value, self.finder) if last else []
                    else:
                        records = value if last else []
                    if records:
                        yield self._capped(records)
                        if (
                            self.limits.max_records is not None
                            and self.records_seen >= self.limits.max_records
                        ):
                            self.stop(f"stopped after {self.records_seen} records: preview limit")
                            return
            for name, path_text, _c in compiled:
                if not collected[name]:
                    self.log(f"Call {index}: variable {{{name}}} ({path_text}) matched nothing")
            variables.update(collected)
            self.previous_docs = docs

    def _capped(self, records: list[Any]) -> list[Any]:
        cap = self.limits.max_records
        if cap is not None:
            records = records[: cap - self.records_seen]
        self.records_seen += len(records)
        return records

    def _bindings(
        self, index: int, call: Call, variables: dict[str, list], builtins: dict
    ) -> Iterator[dict[str, Any]]:
        """One dict of values per request: the product of the multi-valued variables used."""
        used = set().union(*call.placeholders().values())
        source = getattr(call.behavior, "url_source", "")
        if source and not source.startswith("$"):
            used.add(source)
        fixed = dict(builtins)
        fan: list[tuple[str, list[Any]]] = []
        for name in sorted(used & variables.keys()):
            values = variables[name]
            if not values:
                raise StudioError(
                    f"Call {index} uses {{{name}}}, but it matched nothing in the earlier "
                    "responses; check the variable's JSONPath against the last test"
                )
            if len(values) == 1:
                fixed[name] = values[0]
            else:
                fan.append((name, values))
        if not fan:
            yield fixed
            return
        names = [n for n, _v in fan]
        total = math.prod(len(v) for _n, v in fan)
        counts = " × ".join(f"{{{n}}} {len(v):,}" for n, v in fan)
        cap = self.limits.max_fanout
        if cap is None and total > self.job.max_fanout:
            raise StudioError(
                f"Call {index} would send {total:,} requests ({counts} values), more than the "
                f"limit of {self.job.max_fanout:,} (max fan-out requests per call)"
            )
        self.log(f"Call {index}: fanning out over {', '.join(names)}: {total:,} requests")
        # Lazily: a preview of 5 records over 3 × 2,500 values builds 5 combinations, not 15 M.
        for n, combo in enumerate(itertools.product(*(values for _n, values in fan))):
            if cap is not None and n >= cap:
                self.stop(f"stopped after {cap} of {total:,} fan-out requests: preview limit")
                return
            yield {**fixed, **dict(zip(names, combo, strict=True))}

    def _check_values(self, index: int, name: str, values: list[Any]) -> None:
        """A variable holds at most ``max_fanout`` values: it could never be sent more."""
        if len(values) > self.job.max_fanout:
            raise StudioError(
                f"Call {index}: variable {{{name}}} took more than {self.job.max_fanout:,} "
                "values, more requests than a later call may send (max fan-out requests per "
                "call)"
            )

    # --- one call ----------------------------------------------------------------------------

    def _label(self, index: int, call: Call) -> str:
        return f"Call {index}" + (f" ({call.name})" if call.name else "")

    def _request_parts(self, call: Call, values: dict[str, Any]) -> dict[str, Any]:
        whole = PLACEHOLDER.fullmatch(call.path.strip())
        path = fill(call.path, values) if whole else fill(call.path, values, quote_values=True)
        url = self.client.url(path)
        parts: dict[str, Any] = {
            "url": url,
            "scope": url,  # where the call's headers and query may go (see HttpClient.request)
            "params": [(fill(p.name, values), fill(p.value, values)) for p in call.query],
            "headers": {p.name: fill(p.value, values) for p in call.headers},
        }
        body = call.body
        if body.type == "json" and body.content.strip():
            text = render_json(body.content, values)
            try:
                parts["json_body"] = json.loads(text)
            except json.JSONDecodeError as e:
                raise StudioError(f"the JSON body is not valid once filled in: {e}") from None
        elif body.type == "form":
            parts["data"] = {f.name: fill(f.value, values) for f in body.fields}
        elif body.type == "raw":
            parts["data"] = fill(body.content, values).encode()
            if body.content_type:
                parts["headers"].setdefault("Content-Type", body.content_type)
        # A credential typed into the call itself (?api_key=…, a password form field) is a
        # secret of the trace as the connection's are: masked wherever it would show.
        pairs = [*parts["params"], *parts["headers"].items()]
        if isinstance(parts.get("data"), dict):
            pairs += list(parts["data"].items())
        for name, value in pairs:
            if value and CREDENTIAL_NAME.search(str(name)):
                self.client.mask.add(str(value))
        return parts

    def _send(self, label: str, call: Call, parts: dict, note: str = "", **extra) -> Response:
        response = self.client.request(
            label,
            call.method,
            parts["url"],
            params=parts["params"],
            headers=parts["headers"],
            json_body=parts.get("json_body"),
            data=parts.get("data"),
            note=note,
            scope=parts["scope"],
            **extra,
        )
        return response

    def _perform(self, index: int, call: Call, values: dict) -> Iterator[tuple[str, Any]]:
        label = self._label(index, call)
        parts = self._request_parts(call, values)
        behavior = call.behavior
        if isinstance(behavior, RetryBehavior):
            yield "doc", self._poll(label, call, parts, behavior)
        elif isinstance(behavior, DownloadBehavior):
            yield from self._download(label, call, parts, behavior, values)
        elif isinstance(behavior, PaginationBehavior):
            yield from self._pages(label, call, parts, behavior)
        else:
            yield "doc", self._send(label, call, parts).json(label)

    def _poll(self, label: str, call: Call, parts: dict, b: RetryBehavior) -> Any:
        condition = compile_path(b.condition_key) if b.condition_key else None
        status, value = None, None
        for attempt in range(1, b.max_attempts + 1):
            response = self._send(
                label, call, parts, note=f"attempt {attempt}/{b.max_attempts}", fail=False
            )
            status = response.status
            doc = None
            if response.content.strip():
                with contextlib.suppress(HttpError):
                    doc = response.json(label)
            value = condition.get(doc) if condition and doc is not None else None
            met = condition is None or _same(value, b.condition_value)
            if status == b.expected_status and met:
                self.log(f"{label}: condition met after {attempt} attempt(s)")
                if doc is None:
                    raise HttpError(f"{label}: the answer that met the condition is not JSON")
                return doc
            if status >= 400 and status != b.expected_status:
                self.log(f"{label}: attempt {attempt} answered {status}")
            if attempt < b.max_attempts:
                self._wait(b.interval)
        want = f"status {b.expected_status}"
        if condition:
            want += f" and {b.condition_key} = {b.condition_value!r}"
        got = f"status {status}" + (f" and {b.condition_key} = {value!r}" if condition else "")
        raise StudioError(
            f"{label}: gave up after {b.max_attempts} attempts waiting for {want}; "
            f"the last answer had {got}"
        )

    def _wait(self, seconds: float) -> None:
        """Sleep in short steps, reporting each: whoever holds the run's deadline (the
        ``on_event`` of ``run_job``) stops the run within a step of it, not after the whole
        interval."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, WAIT_STEP))
            self.on_event({"kind": "wait"})

    def _download(
        self, label: str, call: Call, parts: dict, b: DownloadBehavior, values: dict
    ) -> Iterator[tuple[str, Any]]:
        """Fetch the file (or, for a JSONPath into the previous responses, every file it
        finds, in order), streamed to disk, and read its records."""
        base = self.client.conn.base_url + "/"
        if b.url_source.startswith("$"):
            path = compile_path(b.url_source)
            urls = [urljoin(base, str(v)) for d in self.previous_docs for v in path.values(d) if v]
            if not urls:
                raise StudioError(
                    f"{label}: {b.url_source} found no URL in the previous call's response"
                )
        elif b.url_source:
            urls = [urljoin(base, str(values[b.url_source]))]
        else:
            urls = [parts["url"]]
        options = CsvOptions(b.delimiter, b.encoding, b.header_row, b.quote_char)
        limits = ReadLimits(max_bytes=self.client.max_download_bytes)
        prefix = self.finder.stream_prefix if call is self._last_call else None
        for url in urls:
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                target = Path(tmp) / "download"
                response = self.client.request(
                    label,
                    "GET",
                    url,
                    params=parts["params"],
                    headers=parts["headers"],
                    stream_to=target,
                    note="download",
                    scope=parts["scope"],  # a signed file elsewhere gets no call header
                )
                self.log(f"{label}: downloaded {response.exchange.size:,} bytes")
                name = Path(urlsplit(url).path).name or "download"
                yield from read_file(
                    target,
                    b.format,
                    options,
                    name=f"{label}: {name}",
                    limits=limits,
                    stream_prefix=prefix,
                )

    def _pages(
        self, label: str, call: Call, parts: dict, b: PaginationBehavior
    ) -> Iterator[tuple[str, Any]]:
        # What counts as a page's records: the setting; else, for the last call, the content
        # finder; for an earlier call, what its first variable takes (the ids it pages through),
        # since the content finder describes the last call's responses, not this one's.
        if b.records_path:
            counter = compile_path(b.records_path)
        elif call is not self._last_call and call.variables:
            counter = compile_path(call.variables[0].path)
        else:
            counter = self.finder
        cap, cap_reason = b.max_pages, "max pages"
        if self.limits.max_pages is not None and self.limits.max_pages < cap:
            cap, cap_reason = self.limits.max_pages, "preview limit"
        paginator = paginator_for(b, parts["url"], parts["params"])
        previous: list[Any] | None = None
        seen = 0
        for number in itertools.count(1):
            url, params = paginator.request()
            response = self._send(
                label, call, {**parts, "url": url, "params": params}, note=f"page {number}"
            )
            doc = response.json(label)
            records = records_of(doc, counter)
            count = len(records)
            if count and records == previous:
                # Some APIs answer a page past the end with their last page again.
                self.log(
                    f"{label}: stopped after {number - 1} page(s): page {number} holds the same "
                    f"records as page {number - 1} (the API repeats its last page)"
                )
                return
            previous = records
            seen += count
            self.on_event({"kind": "page", "call": label, "page": number, "records": count})
            yield "doc", doc
            page = Page(number, response.url, doc, count, seen, response.headers, response.links)
            reason = paginator.advance(page)
            if reason:
                self.log(f"{label}: stopped after {number} page(s): {reason}")
                return
            if number >= cap:
                self.stop(f"{label}: stopped after {number} pages: {cap_reason}")
                return
            if self.limits.max_records is not None and self.records_seen >= self.limits.max_records:
                return


def _same(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == expected.strip().lower()
    return value is not None and str(value) == expected


# --- preview ---------------------------------------------------------------------------------


@dataclass
class Trace:
    """What a preview did and found: the studio's test panel and ``runner preview --json``."""

    exchanges: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    discarded: int = 0  # records a discard_if_empty field dropped: neither rows nor rejects
    children: dict[str, list[dict]] = field(default_factory=dict)  # child entity → its rows
    error: str | None = None
    elapsed_ms: float = 0.0
    hints: dict = field(default_factory=dict)  # e.g. the delimiter a file's first lines suggest

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def preview(
    job: ApiJob,
    conn: ApiConnection,
    *,
    up_to_call: int | None = None,
    max_pages: int = PREVIEW_PAGES,
    max_records: int = PREVIEW_RECORDS,
    last_success_at: str = "",
    on_event: Callable[[Event], None] | None = None,
) -> Trace:
    """Run the chain (up to a call) with limits, write nothing, and return its trace.

    Transport retries stay on, with a small cap, so a preview behaves like a run."""
    trace = Trace()
    started = time.perf_counter()
    keep_docs = 50

    def record(event: Event) -> None:
        kind = event["kind"]
        if kind == "exchange":
            trace.exchanges.append(event["exchange"].as_dict())
        elif kind == "variables" and trace.exchanges:
            trace.exchanges[-1]["variables"] = mask.json(event["values"])
        elif kind == "log":
            trace.log.append(event["message"])
        elif kind == "stop":
            trace.stopped.append(event["message"])
            trace.log.append(event["message"])
        elif kind == "document" and not event["records"] and len(trace.documents) < keep_docs:
            trace.documents.append(mask.json(event["value"]))  # CSV/JSON Lines rows: records
        if on_event:
            on_event(event)

    def exchange(e: Exchange) -> None:
        record({"kind": "exchange", "exchange": e})

    limits = Limits(max_pages=max_pages, max_records=max_records, max_fanout=max_records)
    with HttpClient(conn, retries=2, retry_after_max=5.0, on_exchange=exchange) as client:
        mask = client.mask
        chain = Chain(job, conn, client, limits, last_success_at=last_success_at, on_event=record)
        mapper = job_mapper(job, entity(job.entity))
        try:
            for batch in chain.batches(up_to_call):
                mapped = mapper.map(batch, start=len(trace.records))
                trace.records.extend(batch)
                trace.rows.extend(mapped.rows)
                trace.rejects.extend(r.as_dict() for r in mapped.rejects)
                trace.discarded += len(mapped.discarded)
                for name, rows in mapped.children.items():
                    trace.children.setdefault(name, []).extend(rows)
        except StudioError as e:
            trace.error = str(e)
            trace.log.append(f"error: {e}")
    trace.elapsed_ms = (time.perf_counter() - started) * 1000
    return trace


def find_records(documents: list[Any], expr: str) -> tuple[list[Any], str | None, list[str]]:
    """The content finder over cached responses, for the live preview: (records, error,
    nearby paths that do match when nothing does). No request is sent."""
    try:
        finder = compile_path(expr)
    except JsonPathError as e:
        return [], str(e), []
    records = [r for doc in documents for r in records_of(doc, finder)]
    if records or not documents:
        return records, None, []
    import difflib

    paths = [p for p, v in leaf_paths(documents[0]) if isinstance(v, list) and v]
    paths += [p for p, _v in leaf_paths(documents[0]) if p not in paths]
    near = difflib.get_close_matches(expr, paths, n=5, cutoff=0.0)
    return [], None, near
