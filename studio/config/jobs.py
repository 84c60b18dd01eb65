"""The import job models: API jobs (a chain of calls, a content finder) and file jobs (CSV files
from a file server), each with a field mapping and an optional CSV destination.

Each call may extract named variables from its responses (JSONPath) that later calls use as
``{name}`` in their path, query, headers and body; a call has one behavior: a single request,
Retry (poll until a condition holds), Download (a file whose URL an earlier call returned) or
Pagination. The job is validated as a whole when saved: JSONPaths parse, every ``{name}`` used
is defined by an earlier call or built in, and the entity's required fields are mapped.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from studio.children import ChildMapping, child_problems, known_entity
from studio.config.base import ConfigModel, Stamped, one_line
from studio.config.schedules import Schedule
from studio.entities import entity
from studio.errors import ConfigError, readable
from studio.jsonpath import check
from studio.mapping import FieldMap, field_problems, lookup_problems, unmapped_required
from studio.transforms import Lookup, duplicate_names

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTINS = ("now", "run_id", "last_success_at")
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Names of values that are credentials (narrower than headers': "productKey" is an id).
CREDENTIAL_NAME = re.compile(
    r"token|session|secret|passw|api_?key|auth|cookie|signature|credential|bearer", re.I
)


def _jsonpath(v: str) -> str:
    if v and (error := check(v)):
        raise ValueError(error)
    return v


class Param(ConfigModel):
    """A query parameter, header or form field; ``value`` may hold ``{variables}``."""

    name: str = Field(title="Name", min_length=1)
    value: str = Field(default="", title="Value")


class Variable(ConfigModel):
    """A value taken from a call's responses for later calls: ``productId`` ← ``$.items[*].id``.

    A secret variable (a session token a login call returns) is masked wherever the run shows
    a request or a response; it is one by default when its name or the field it is taken from
    is named like a credential (token, session, key, secret, password, auth…)."""

    name: str = Field(title="Variable name", pattern=_IDENT)
    path: str = Field(title="JSONPath", min_length=1)
    secret: bool = Field(
        default=False,
        title="Secret",
        description="Mask the value in traces, logs and previews. Defaults to true for names "
        "such as token, sessionId or apiKey.",
    )

    @model_validator(mode="before")
    @classmethod
    def _guess_secret(cls, data: object) -> object:
        if isinstance(data, dict) and "secret" not in data:
            named = f"{data.get('name', '')} {str(data.get('path', '')).rsplit('.', 1)[-1]}"
            data = {**data, "secret": bool(CREDENTIAL_NAME.search(named))}
        return data

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _jsonpath(v)


class Body(ConfigModel):
    type: Literal["none", "json", "form", "raw"] = Field(default="none", title="Body type")
    content: str = Field(default="", title="Body")
    fields: list[Param] = Field(default_factory=list, title="Form fields")
    content_type: str = Field(default="", title="Content type (raw bodies)")

    @model_validator(mode="after")
    def _json_parses(self) -> Body:
        if self.type == "json" and self.content.strip():
            # Placeholders may stand for numbers ({"id": {id}}): parse with a stand-in value.
            try:
                json.loads(PLACEHOLDER.sub("0", self.content))
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
                ) from None
        return self


class NoBehavior(ConfigModel):
    type: Literal["none"] = "none"


class RetryBehavior(ConfigModel):
    """Poll: repeat the call until the status and a condition hold (an export becomes ready)."""

    type: Literal["retry"] = "retry"
    max_attempts: int = Field(default=10, ge=1, le=10_000, title="Max attempts")
    interval: float = Field(default=5.0, ge=0, le=86_400, title="Interval (seconds)")
    expected_status: int = Field(default=200, ge=100, le=599, title="Expected status")
    condition_key: str = Field(default="", title="Condition key (JSONPath)")
    condition_value: str = Field(default="", title="Condition value")

    @field_validator("condition_key")
    @classmethod
    def _path(cls, v: str) -> str:
        return _jsonpath(v)


class DownloadBehavior(ConfigModel):
    """Fetch a file, streamed to disk, from a URL an earlier response gave."""

    type: Literal["download"] = "download"
    url_source: str = Field(
        default="",
        title="URL from",
        description="A variable name, or a JSONPath into the previous call's response; empty: "
        "the call's own path.",
    )
    format: Literal["csv", "json", "jsonl", "zip"] = Field(default="csv", title="File format")
    delimiter: str = Field(default=",", title="CSV delimiter", min_length=1, max_length=1)
    encoding: str = Field(default="utf-8", title="Encoding")
    header_row: bool = Field(default=True, title="First row is a header")
    quote_char: str = Field(default='"', title="Quote character", min_length=1, max_length=1)

    @field_validator("url_source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("$"):
            return _jsonpath(v)
        if v and not re.match(_IDENT, v):
            raise ValueError("must be a variable name or a JSONPath starting with $")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"{v!r} is not an encoding Python knows (try utf-8)") from None
        return v


class PaginationBehavior(ConfigModel):
    """Loop through pages. Stops on total pages or records, an empty or short page, a missing
    next token or link, a value the API leaves empty on its last page (``$.next``: null), or
    ``max_pages``."""

    type: Literal["pagination"] = "pagination"
    style: Literal["page", "offset", "cursor", "next_link"] = Field(default="page", title="Style")
    page_param: str = Field(default="page", title="Page parameter")
    first_page: int = Field(default=1, ge=0, title="First page")
    size_param: str = Field(default="size", title="Page size parameter")
    page_size: int = Field(default=100, ge=1, le=100_000, title="Page size")
    offset_param: str = Field(default="offset", title="Offset parameter")
    limit_param: str = Field(default="limit", title="Limit parameter")
    cursor_param: str = Field(default="cursor", title="Cursor parameter")
    cursor_path: str = Field(default="", title="Next cursor (JSONPath)")
    cursor_header: str = Field(default="", title="Next cursor header")
    next_link_path: str = Field(
        default="", title="Next link (JSONPath)", description="Empty: the Link header's rel=next"
    )
    records_path: str = Field(
        default="",
        title="Records on a page (JSONPath)",
        description="What counts as the page's records for the empty and short page rules; "
        "empty: the content finder for the last call, the first variable's JSONPath for an "
        "earlier one",
    )
    total_pages_path: str = Field(default="", title="Total pages (JSONPath)")
    total_records_path: str = Field(default="", title="Total records (JSONPath)")
    stop_when_empty_path: str = Field(
        default="",
        title="Stop when empty (JSONPath)",
        description="Stop after a page where this is missing, null, an empty string, an empty "
        "list or an empty object, e.g. $.next or $.meta.next_cursor; 0 and false do not stop",
    )
    stop_on_short_page: bool = Field(default=True, title="Stop on a short page")
    max_pages: int = Field(default=1000, ge=1, le=1_000_000, title="Max pages")

    @field_validator(
        "cursor_path",
        "next_link_path",
        "records_path",
        "total_pages_path",
        "total_records_path",
        "stop_when_empty_path",
    )
    @classmethod
    def _paths(cls, v: str) -> str:
        return _jsonpath(v)

    @model_validator(mode="after")
    def _cursor_source(self) -> PaginationBehavior:
        if self.style == "cursor" and not (self.cursor_path or self.cursor_header):
            raise ValueError("Next cursor (JSONPath): give a JSONPath or a header for the cursor")
        return self


Behavior = Annotated[
    NoBehavior | RetryBehavior | DownloadBehavior | PaginationBehavior,
    Field(discriminator="type", title="Behavior"),
]


class Call(ConfigModel):
    """One HTTP call of the chain."""

    name: str = Field(default="", title="Label")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(default="GET", title="Method")
    path: str = Field(default="", title="Path")
    query: list[Param] = Field(default_factory=list, title="Query parameters")
    headers: list[Param] = Field(default_factory=list, title="Headers")
    body: Body = Field(default_factory=Body)
    variables: list[Variable] = Field(default_factory=list, title="Variables")
    behavior: Behavior = Field(default_factory=NoBehavior)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, v: list[Param]) -> list[Param]:
        for p in v:
            try:
                one_line(p.name + p.value)
            except ValueError:
                raise ValueError(f"header {p.name!r} must not contain line breaks") from None
        return v

    def placeholders(self) -> dict[str, set[str]]:
        """Every ``{name}`` this call uses, by the field it appears in (for validation)."""
        texts = {
            "Path": [self.path],
            "Query parameters": [p.value for p in self.query] + [p.name for p in self.query],
            "Headers": [p.value for p in self.headers],
            "Body": [self.body.content] + [p.value for p in self.body.fields],
        }
        return {k: {n for t in v for n in PLACEHOLDER.findall(t)} for k, v in texts.items()}


class CsvSettings(ConfigModel):
    """How a CSV file is read."""

    delimiter: Literal[",", ";", "\t", "|"] = Field(default=",", title="Delimiter")
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = Field(
        default="utf-8",
        title="Encoding",
        description="utf-8-sig is UTF-8 with a BOM (plain utf-8 reads a BOM too); cp1252 is "
        "Windows-1252",
    )
    header_row: bool = Field(default=True, title="First row is a header")
    quote_char: str = Field(default='"', title="Quote character", min_length=1, max_length=1)


class CsvDestination(ConfigModel):
    """Also write the mapped rows as a CSV file to a file server (Celigo's file options)."""

    enabled: bool = Field(default=False, title="Write a CSV file")
    connection_id: str = Field(default="", title="Destination connection")
    folder: str = Field(default="", title="Folder")
    file_name: str = Field(
        default="file-{{timestamp}}.csv",
        title="File name",
        description="{{timestamp}}, {{date}}, {{job}} and {{run_id}} are filled in",
    )
    row_delimiter: Literal["\n", "\r\n"] = Field(default="\n", title="Row delimiter")
    column_delimiter: Literal[",", ";", "\t", "|"] = Field(default=",", title="Column delimiter")
    include_header: bool = Field(default=True, title="Include header")
    wrap_with_quotes: bool = Field(default=False, title="Wrap every value with quotes")
    replace_tab_with_space: bool = Field(default=False, title="Replace tab with space")
    replace_newline_with_space: bool = Field(default=False, title="Replace newline with space")
    neutralize_formulas: bool = Field(
        default=True,
        title="Neutralise formulas",
        description="Prefix values starting with = + - @ with a quote, so that a spreadsheet "
        "does not run them",
    )

    @field_validator("folder", "file_name")
    @classmethod
    def _safe(cls, v: str) -> str:
        if "\x00" in v or ".." in v.replace("\\", "/").split("/"):
            raise ValueError("must not contain '..' or NUL bytes")
        return v

    @model_validator(mode="after")
    def _needs_connection(self) -> CsvDestination:
        if self.enabled and not self.connection_id:
            raise ValueError("Destination connection: is required to write a CSV file")
        if self.enabled and not self.file_name.strip():
            raise ValueError("File name: is required")
        return self


class RunSettings(ConfigModel):
    """How the runner treats this job's scheduled runs."""

    catch_up: bool = Field(
        default=True,
        title="Catch up missed runs",
        description="Runs missed while the runner was down run once when it is back",
    )
    on_overlap: Literal["queue", "skip"] = Field(
        default="queue",
        title="If still running when due",
        description="queue: run once more right after; skip: wait for the next slot",
    )
    timeout_minutes: int = Field(default=60, ge=1, le=24 * 60, title="Run timeout (minutes)")


class JobBase(Stamped):
    """What every import job has: connection, entity, schedule, mapping, and a destination."""

    connection_id: str = Field(title="Connection", min_length=1)
    entity: str = Field(title="Target entity")
    external_key: str = Field(
        default="",
        title="External key",
        pattern=r"^[A-Za-z0-9_.\-]{0,100}$",
        description="A stable key for the REST API (/v1/datafeed/synchron/{externalKey})",
    )
    schedule: Schedule = Field(default_factory=Schedule)
    run: RunSettings = Field(default_factory=RunSettings, title="Runs")
    lookups: list[Lookup] = Field(
        default_factory=list,
        title="Lookups",
        description="Named value maps that mapping fields apply by name (lookup: status_map)",
    )
    mapping: list[FieldMap] = Field(default_factory=list, title="Mapping")
    children: list[ChildMapping] = Field(
        default_factory=list,
        title="Children",
        description="Rows of other entities from an array inside each record (a product's "
        "$.variants[*] to Variants), linked by the parent row's key, written in the same "
        "transaction",
    )
    destination: CsvDestination = Field(default_factory=CsvDestination, title="Destination")
    debug_until: datetime | None = Field(
        default=None,
        alias="debugUntil",
        title="Debug until",
        description="While in the future, runs keep a full request/response trace (masked)",
    )
    assistant_metadata: dict | list | str | None = Field(
        default=None, alias="assistantMetadata", title="Assistant metadata"
    )

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, v: str) -> str:
        return known_entity(v)

    @model_validator(mode="after")
    def _lookups_used(self) -> JobBase:
        """Lookup names are unique, and every lookup a field uses is one of the job's."""
        problems = [f"Lookups: {name!r} is defined twice" for name in duplicate_names(self.lookups)]
        problems += [
            f"Mapping {n + 1} › Lookup: {message}"
            for n, _column, message in lookup_problems(self.mapping, self.lookups)
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def anchor(self) -> datetime | None:
        """What interval schedules count from: the schedule's own anchor, or the creation."""
        return self.schedule.anchor or self.created_at

    def mapping_problems(self, draft: bool) -> list[str]:
        """Required fields unmapped (unless a draft), unknown fields, bad defaults, doubles."""
        problems = []
        spec = entity(self.entity)
        missing = [] if draft else unmapped_required(self.mapping, spec)
        if missing:
            problems.append(
                f"Mapping: required field{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} of {self.entity} {'are' if len(missing) > 1 else 'is'} "
                "not mapped"
            )
        for n, column, message in field_problems(self.mapping, spec):
            problems.append(f"Mapping {n + 1} › {column.capitalize()}: {message}")
        if self.children and not draft and spec.key not in {f.generate for f in self.mapping}:
            problems.append(f"Children: the key {spec.key} of {self.entity} links them: map it")
        return problems + child_problems(self.children, self.lookups, draft, self.entity)


class ApiJob(JobBase):
    """An import job that calls a REST API."""

    ref_kinds: ClassVar[dict[str, str]] = {
        "connection_id": "api",
        "destination.connection_id": "file_server",
    }

    kind: Literal["api"] = "api"
    calls: list[Call] = Field(min_length=1, title="Call")
    content_finder: str = Field(default="$", title="Content finder (JSONPath)")
    max_fanout: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        title="Max fan-out requests per call",
        description="A call that a multi-valued variable would send more often than this "
        "fails before sending anything, naming the variables and their counts.",
    )

    @field_validator("content_finder")
    @classmethod
    def _finder(cls, v: str) -> str:
        return _jsonpath(v) or "$"

    @model_validator(mode="after")
    def _whole_job(self, info: ValidationInfo) -> ApiJob:
        draft = bool(info.context and info.context.get("draft"))
        problems = []
        defined = set(BUILTINS)
        for i, call in enumerate(self.calls, 1):
            for where, names in call.placeholders().items():
                for name in sorted(names - defined):
                    problems.append(
                        f"Call {i} › {where}: uses {{{name}}}, which no earlier call defines "
                        f"(variables so far: {', '.join(sorted(defined))})"
                    )
            source = getattr(call.behavior, "url_source", "")
            if source and not source.startswith("$") and source not in defined:
                problems.append(f"Call {i} › URL from: no earlier call defines {{{source}}}")
            if isinstance(call.behavior, DownloadBehavior) and not (source or call.path):
                problems.append(f"Call {i} › URL from: a download needs a URL source or a path")
            if not call.path and not isinstance(call.behavior, DownloadBehavior):
                problems.append(f"Call {i} › Path: is required")
            defined |= {v.name for v in call.variables}
        problems += self.mapping_problems(draft)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class FileSource(ConfigModel):
    """One file, or every file of an inbound folder (bulk), moved to an outbound folder once
    imported."""

    mode: Literal["path", "bulk"] = Field(default="path", title="Files")
    path: str = Field(
        default="",
        title="File path",
        description="Folder and file name, e.g. folder/sub-folder/products.csv",
    )
    inbound: str = Field(default="", title="Inbound folder")
    pattern: str = Field(default="*.csv", title="File name pattern")
    outbound: str = Field(default="", title="Outbound folder")
    error_folder: str = Field(
        default="",
        title="Error folder",
        description="Where a file that fails goes; empty: it stays",
    )

    @field_validator("path", "inbound", "outbound", "error_folder")
    @classmethod
    def _safe(cls, v: str) -> str:
        from studio.files import FileServerError, check_job_path

        try:
            check_job_path(v)
        except FileServerError as e:
            raise ValueError(str(e).split(": ", 1)[-1]) from None
        return v

    @model_validator(mode="after")
    def _complete(self) -> FileSource:
        if self.mode == "path" and not self.path.strip("/"):
            raise ValueError("File path: is required (folder and file name)")
        if self.mode == "bulk":
            if not self.outbound:
                raise ValueError("Outbound folder: is required in bulk mode")
            if self.inbound.strip("/") == self.outbound.strip("/"):
                raise ValueError("Outbound folder: must differ from the inbound folder")
        return self


class FileJob(JobBase):
    """An import job that reads CSV files from an FTP, FTPS or SFTP server."""

    ref_kinds: ClassVar[dict[str, str]] = {
        "connection_id": "file_server",
        "destination.connection_id": "file_server",
    }

    kind: Literal["file"] = "file"
    source: FileSource = Field(default_factory=FileSource, title="Source")
    csv: CsvSettings = Field(default_factory=CsvSettings, title="CSV")

    @model_validator(mode="after")
    def _whole_job(self, info: ValidationInfo) -> FileJob:
        problems = self.mapping_problems(bool(info.context and info.context.get("draft")))
        if self.children:  # a CSV row is flat: there is no array in it to read children from
            problems.insert(
                0,
                "Children: are read from arrays inside JSON records; a CSV file's "
                "records have none",
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self


Job = Annotated[ApiJob | FileJob, Field(discriminator="kind")]
JOB: TypeAdapter = TypeAdapter(Job)


def draft_job(data: dict, up_to_call: int | None = None) -> ApiJob | FileJob:
    """A job being built, validated for a test: only calls 1..``up_to_call``, and a mapping that
    may still miss required fields. Raises ``ConfigError`` naming call and field."""
    data = dict(data)
    if up_to_call:
        data["calls"] = list(data.get("calls", []))[:up_to_call]
    data["name"] = data.get("name") or "draft"  # a job can be tested before it is named
    try:
        return JOB.validate_python(data, context={"draft": True})
    except ValidationError as e:
        raise ConfigError(readable(e, [ApiJob, FileJob])) from None


def job_problems(data: dict) -> list[str]:
    """What keeps a job being built from being saved, one sentence per field, headed by its
    place ("Call 1 › Behavior › Page size: …"), so the studio can show each beside its field
    while the analyst types (the store checks the same when it saves, and the name's
    uniqueness besides)."""
    try:
        JOB.validate_python(data)
    except ValidationError as e:
        return readable(e, [ApiJob, FileJob])
    return []
