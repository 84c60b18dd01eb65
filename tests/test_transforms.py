"""Mappings that transform: lookups, templates, cleanup, discards, locale numbers, dates in a
time zone; through the models (what Save refuses, in the words shown), the mapper (rows,
rejects, discards; the fast path never changes a result), a real run and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from pydantic import ValidationError

from studio.config.jobs import job_problems
from studio.entities import entity
from studio.mapping import FieldMap, Lookup, Mapper, typed_fields
from studio.rowstore import read_rows
from studio.runs import run_job
from studio.templates import ENV, compile_template, shortcut, template_problem
from studio.transforms import (
    MAX_LOOKUP_BYTES,
    MAX_LOOKUP_VALUES,
    LookupCsvError,
    lookup_from_csv,
)
from tests.helpers import PRODUCTS, demo, runner

STATUS = Lookup(name="status_map", map={"A": "active", "I": "inactive", "1": "one"})


def fm(extract="", generate="x", **kw) -> FieldMap:
    return FieldMap(extract=extract, generate=generate, **kw)


def mapped(fields, records, lookups=(), columns=None):
    """The batch, after checking that the careful path alone gives the same rows, rejects and
    discards as the generated fast path (which must only decide speed)."""
    mapper = Mapper(fields, lookups=lookups, columns=columns)
    batch = mapper.map(records)
    rows, rejects, discarded = [], [], []
    for i, r in enumerate(records):
        row = mapper._careful(i, r, rejects, discarded)
        if row is not None:
            rows.append(row)
    assert (batch.rows, batch.rejects, batch.discarded) == (rows, rejects, discarded)
    return batch


def reasons(batch) -> list[tuple[int, str, str]]:
    return [(r.record, r.field, r.reason) for r in batch.rejects]


def api_job(**overrides) -> dict:
    data = {
        "kind": "api",
        "name": "Job",
        "connection_id": "c",
        "entity": "Products",
        "calls": [{"path": "/products"}],
        "mapping": [
            {"extract": "$.id", "generate": "external_id"},
            {"extract": "$.title", "generate": "name"},
            {"extract": "$.cat", "generate": "classification_category_id"},
        ],
    }
    return {**data, **overrides}


# --- lookups -------------------------------------------------------------------------------


def test_a_lookup_maps_values_and_a_miss_rejects_keeps_or_takes_the_default():
    records = [{"s": "A"}, {"s": "Z"}, {"s": 1}, {"s": ""}]
    strict = mapped([fm("$.s", "status", lookup="status_map")], records, [STATUS])
    assert strict.rows == [{"status": "active"}, {"status": "one"}, {"status": None}]
    assert reasons(strict) == [(1, "status", "$.s: 'Z' is not in the lookup 'status_map'")]
    keep = STATUS.model_copy(update={"on_miss": "keep"})
    assert mapped([fm("$.s", "status", lookup="status_map")], records[:2], [keep]).rows == [
        {"status": "active"},
        {"status": "Z"},
    ]
    other = Lookup(name="status_map", map=STATUS.map, default="unknown")
    assert other.on_miss == "default"  # a default and no on_miss: misses take the default
    assert mapped([fm("$.s", "status", lookup="status_map")], records[:2], [other]).rows == [
        {"status": "active"},
        {"status": "unknown"},
    ]


def test_a_lookup_is_validated_with_the_job():
    with pytest.raises(ValidationError) as e:
        Lookup(name="m", map={"a": "b"}, on_miss="default")
    assert "Default: is required when a value not in the map takes it" in str(e.value)
    with pytest.raises(ValidationError):
        Lookup(name="has space", map={})
    lookups = [{"name": "m", "map": {"a": "b"}}, {"name": "m", "map": {}}]
    mapping = [*api_job()["mapping"], {"extract": "$.s", "generate": "status", "lookup": "nope"}]
    assert job_problems(api_job(lookups=lookups, mapping=mapping)) == [
        "Lookups: 'm' is defined twice",
        "Mapping 4 › Lookup: 'nope' is not a lookup of this job (its lookups: m)",
    ]
    assert job_problems(api_job(lookups=lookups[:1])) == []


def test_a_lookup_from_a_two_column_csv():
    text = "\ufeffcode;status\nA;active\n\nI ; inactive\nA;active\n"
    lookup = lookup_from_csv("status_map", text, on_miss="keep")
    assert (lookup.map, lookup.on_miss) == ({"A": "active", "I": "inactive"}, "keep")
    assert lookup_from_csv("m", "A,active\nI,inactive", header=False).map == {
        "A": "active",
        "I": "inactive",
    }
    assert lookup_from_csv("m", 'code\tname\n"x, y"\tz').map == {"x, y": "z"}
    problems = {
        "code,status\nA,active\nI,inactive,extra\n": "line 3: has 3 columns, a lookup takes two",
        "code,status\nA,active\nA,inactive\n": "line 3: 'A' is already mapped to 'active' "
        "(line 2), not 'inactive'",
        "code,status\n,active\n": "line 2: the value to replace is empty",
        "": "the file is empty: a lookup needs at least one value",
        "code,status\n": "the file has a header and no values",
        "just one column\n": "line 1: a lookup takes two columns",
    }
    for text, message in problems.items():
        with pytest.raises(LookupCsvError) as e:
            lookup_from_csv("m", text)
        assert str(e.value).startswith(message), (text, str(e.value))


def test_a_lookup_has_limits_and_no_empty_value():
    with pytest.raises(ValidationError) as e:
        Lookup(name="m", map={str(i): "x" for i in range(MAX_LOOKUP_VALUES + 1)})
    assert "has 100,001 values, more than the 100,000 a lookup may map" in str(e.value)
    with pytest.raises(ValidationError) as e:
        Lookup(name="m", map={"a": "x" * MAX_LOOKUP_BYTES})
    assert "holds 10,000,001 bytes, more than the 10,000,000 a lookup may hold" in str(e.value)
    for empty in ("", "  "):
        with pytest.raises(ValidationError) as e:
            Lookup(name="m", map={empty: "blank", "A": "active"})
        assert "a value to replace is empty" in str(e.value)
    big = "code,status\n" + "".join(f"{i},x\n" for i in range(MAX_LOOKUP_VALUES + 1))
    problems = {
        big: "line 100002: more than the 100,000 values a lookup may map",
        "x" * (MAX_LOOKUP_BYTES + 1): "the file is larger than the 10,000,000 bytes",
        "code,status\nA," + "x" * 200_000 + "\n": "line 2: field larger than field limit",
    }
    for text, message in problems.items():
        with pytest.raises(LookupCsvError) as e:
            lookup_from_csv("m", text)
        assert str(e.value).startswith(message), str(e.value)[:200]


# --- templates -----------------------------------------------------------------------------


def test_templates_build_a_value_from_the_record():
    fields = [
        fm(generate="name", template="{{ first }} {{ last }}"),
        fm(generate="price", template="{{ price.amount | round(2) }}", type="number"),
        fm(generate="label", template='{{ record["Product Name"] | upper }}-{{ tags[1] }}'),
        fm(generate="note", template="{% if vip %}VIP {% endif %}{{ middle | default('-') }}"),
    ]
    records = [
        {
            "first": "Ada",
            "last": None,
            "price": {"amount": 12.3456},
            "Product Name": "lamp",
            "tags": ["a", "b"],
            "vip": True,
        },
        {"first": "Bo", "price": {"amount": "x"}, "Product Name": "desk", "tags": ["c"]},
    ]
    batch = mapped(fields, records)
    assert batch.rows == [{"name": "Ada ", "price": 12.35, "label": "LAMP-b", "note": "VIP -"}]
    assert reasons(batch) == [
        (1, "name", "name: the template failed: 'last' is undefined"),
        (1, "price", "price: the template failed: type str doesn't define __round__ method"),
        (1, "label", "label: the template failed: list object has no element 1"),
        (1, "note", "note: the template failed: 'vip' is undefined"),
    ]


def test_the_inlined_template_renders_exactly_as_jinja2():
    """Simple templates run as one Python expression; on every record they give Jinja2's text
    (or fail where Jinja2 fails)."""
    templates = [
        "{{ a }}",
        "{{ a }}-{{ b.c }} {{ b['d'] }}",
        "{{ a | upper }}{{ a | lower }}{{ a | trim }}",
        "{{ n | round }} {{ n | round(1) }}",
        "x{{ l[0] }}y{{ l[-1] }}",
        "{{ b.items }}",  # a dict's method: Jinja2's, not inlined
        "{{ 'k' }}{{ 3 }}{{ 1.5 }}",
    ]
    records = [
        {"a": " Mi ", "b": {"c": 1, "d": None, "items": "i"}, "n": 2.345, "l": [1, "z"]},
        {"a": None, "b": {"c": True, "d": [1]}, "n": 7, "l": []},
        {"a": 5, "b": "text", "n": "5", "l": "ab"},
        {"b": {}},
    ]
    for source in templates:
        jinja = ENV.from_string(source)
        ours = compile_template(source)
        for record in records:
            try:
                expected = jinja.render({"record": record, **record})
            except Exception:
                expected = "failed"
            try:
                got = ours(record)
            except Exception:
                got = "failed"
            assert got == expected, (source, record)
    assert shortcut("{{ a }}-{{ b.c }}") is not None and shortcut("{{ b.items }}") is None


def test_templates_are_sandboxed():
    records = [{"s": "x", "n": 10}]
    for source in (
        "{{ s.__class__.__mro__ }}",
        "{{ s.__class__.__subclasses__() }}",
        "{{ s * 1000000 }}",
        "{{ n ** 100000 }}",
        "{{ range(10**9) | list }}",
    ):
        batch = mapped([fm(generate="x", template=source)], records)
        assert batch.rows == [] and batch.rejects[0].reason.startswith(
            ("x: the template failed", "x: the template went over its limit of ")
        ), (source, batch.rows)


# Each pinned a CPU for more than 30 s, or took hundreds of megabytes to gigabytes, before
# templates had limits; now each is a reject naming the field, at once.
HOSTILE_TEMPLATES = {
    "{{ ((10**1000)**1000)**100 > 1 }}": "10,000 bits in a number",
    "{{ lipsum(n=1000000)|length }}": "20 paragraphs of 200 words for lipsum",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}": (
        "10,000 items in a range"
    ),
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}": (
        "20,000 loop iterations and calls in one render"
    ),
    "{% for c in s*100000 %}{% for d in s*100000 %}{% endfor %}{% endfor %}": (
        "20,000 loop iterations and calls in one render"
    ),
    "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}": (
        "20,000 loop iterations and calls in one render"
    ),
    "{{ 'x'|center(200000000) }}": "100,000 characters or items in a value",
    "{{ ('%200000000s') % 1 }}": "100,000 for a width or precision in a format",
    "{{ '%.200000000f' % 1.0 }}": "100,000 for a width or precision in a format",
    "{{ '%*d' % (200000000, 1) }}": "100,000 for a width or precision in a format",
    "{{ '%200000000s'|format(1) }}": "100,000 for a width or precision in a format",
    "{{ '{:200000000}'.format(1) }}": "100,000 for a width or precision in a format",
    "{{ '{x:>200000000}'.format_map({'x': 1}) }}": "100,000 for a width or precision in a format",
    "{{ ('x'*100000)|replace('', 'y'*2000) }}": "100,000 characters or items in a value",
    "{{ ('x'*100000).replace('', 'y'*2000) }}": "100,000 characters or items in a value",
    "{{ 'x'|indent(200000000) }}": "100,000 characters or items in a value",
    "{{ ('x\n'*50000)|indent('y'*1000) }}": "100,000 characters or items in a value",
    "{{ 'x'.center(200000000) }}": "100,000 characters or items in a value",
    "{{ ('x'*100000)|join('y'*100000) }}": "100,000 characters or items in a value",
    "{{ ('y'*100000).join('x'*100000) }}": "100,000 characters or items in a value",
    "{{ ['x'*100000]*100000 }}": "100,000 characters or items in a value",
    "{{ ('x'*60000) ~ ('x'*60000) }}": "100,000 characters or items in a value",
    "{{ ('x'*60000) + ('x'*60000) }}": "100,000 characters or items in a value",
    "{{ [1]|batch(1000000000, 'x')|list }}": "100,000 characters or items in a value",
    "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s }}": "100,000 characters or items in a value",
    "{% for i in range(100000) %}{{ 'x'*100000 }}{% endfor %}": "10,000 items in a range",
    "{% for i in range(10000) %}{{ 'x'*100000 }}{% endfor %}": "100,000 characters of output",
    "{% for i in range(10000) %}{% set y = 'x'*99999 %}{% endfor %}": (
        "5,000,000 characters or items handled in one render"
    ),
}


def test_hostile_templates_reject_the_record_at_once_naming_the_field_and_the_limit():
    records = [{"s": "x"}]
    for source, limit in HOSTILE_TEMPLATES.items():
        started = time.process_time()
        batch = mapped([fm(generate="name", template=source)], records)
        assert time.process_time() - started < 1, source
        assert reasons(batch) == [(0, "name", f"name: the template went over its limit of {limit}")]


def test_hostile_templates_take_no_memory():
    """In a process of its own, so that its peak memory is theirs."""
    program = (
        "import sys, json\n"
        "from studio.templates import compile_template, TemplateRejected\n"
        "for source in json.loads(sys.stdin.read()):\n"
        "    try:\n"
        "        compile_template(source)({'s': 'x'})\n"
        "    except TemplateRejected:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(source)\n"
        # VmHWM: this process's own peak. ru_maxrss would count the test runner's memory too
        # (Linux keeps it across the fork and exec that start this process).
        "print(next(int(line.split()[1]) for line in open('/proc/self/status')\n"
        "           if line.startswith('VmHWM:')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=json.dumps(list(HOSTILE_TEMPLATES)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(done.stdout) < 150_000  # KiB: the interpreter and Jinja2 take about 40 MB


def test_templates_within_the_limits_work_as_before():
    source = (
        "{% set ns = namespace(n=0) %}{% for t in tags %}{% set ns.n = ns.n + loop.index %}"
        "{{ t|upper }}{{ ',' if not loop.last }}{% endfor %} {{ ns.n }} "
        "{{ range(3)|join('-') }} {{ '%05.1f'|format(price) }} {{ '{:>4}'.format(sku) }} "
        "{{ sku|center(6)|replace(' ', '.') }} {{ 2**10 }} {{ lipsum(1, false, 3, 5)|length > 0 }}"
    )
    batch = mapped(
        [fm(generate="x", template=source)], [{"tags": ["a", "b"], "price": 3.14159, "sku": "ab"}]
    )
    assert batch.rows == [{"x": "A,B 3 0-1-2 003.1   ab ..ab.. 1024 True"}]
    long = {"a": "x" * 100_000, "b": "x" * 100_001}
    batch = mapped(
        [fm(generate="x", template="{{ a }}"), fm(generate="y", template="{{ b }}")], [long]
    )
    assert reasons(batch) == [
        (0, "y", "y: the template went over its limit of 100,000 characters or items in a value")
    ]
    assert len(compile_template("{{ a }}")(long)) == 100_000
    batch = mapped([fm(generate="x", template="{{ a }}{{ a }}")], [long])  # the shortcut too
    assert reasons(batch) == [
        (0, "x", "x: the template went over its limit of 100,000 characters of output")
    ]


def test_recursive_loops_are_refused_when_saved():
    source = "{% for i in l recursive %}{{ loop(i) }}{% endfor %}"
    assert template_problem(source) == (
        "line 1: recursive loops are not allowed in a field template"
    )


def test_templates_cannot_change_the_record():
    record = {"id": 1, "sku": "a", "tags": ["x"]}
    for source in (
        "{{ record.pop('id') }}",
        "{{ record.clear() }}",
        "{{ (record|attr('pop'))('sku') }}",
        "{{ tags.append(1) }}",
        "{{ record.update({'id': 2}) }}",
    ):
        batch = mapped([fm(generate="x", template=source)], [record])
        assert batch.rows == [] and "is unsafe" in batch.rejects[0].reason, source
    assert record == {"id": 1, "sku": "a", "tags": ["x"]}


def test_a_template_error_is_refused_at_save_naming_the_field_and_the_line():
    mapping = [
        *api_job()["mapping"],
        {"generate": "description", "template": "Made by\n{{ brand }"},
        {"generate": "brand", "template": "{{ x }}", "extract": "$.brand"},
    ]
    assert job_problems(api_job(mapping=mapping)) == [
        "Mapping 4 › Template: line 2 ('{{ brand }'): unexpected '}'",
        "Mapping 5 › Template: give either an extract or a template, not both",
    ]


def test_a_template_is_compiled_once_not_per_record():
    source = "{{ a }} and {{ b }} #compiled-once"
    before = compile_template.cache_info()
    Mapper([fm(generate="x", template=source)]).map([{"a": i, "b": i} for i in range(100)])
    Mapper([fm(generate="x", template=source)]).map([{"a": 1, "b": 2}])
    after = compile_template.cache_info()
    assert after.misses - before.misses == 1


# --- cleanup and conditions ---------------------------------------------------------------


def test_trim_case_split_lookup_join_in_that_order():
    fields = [
        fm("$.code", "code", trim=True, case="upper", lookup="status_map"),
        fm("$.tags", "tags", split=";", trim=True),
        fm("$.tags", "codes", split=";", trim=True, case="upper", lookup="status_map", join=", "),
        fm("$.list", "joined", join=" | "),
    ]
    records = [
        {"code": " a ", "tags": " a; i ;", "list": ["x", 1, None]},
        {"code": 1, "tags": "", "list": "not a list"},
        {"code": "i", "tags": "a;q"},
    ]
    batch = mapped(fields, records, [STATUS])
    assert batch.rows == [
        {"code": "active", "tags": '["a", "i"]', "codes": "active, inactive", "joined": "x | 1 | "},
        {"code": "one", "tags": None, "codes": None, "joined": "not a list"},
    ]
    assert reasons(batch) == [(2, "codes", "$.tags: 'Q' is not in the lookup 'status_map'")]


def test_split_and_join_keep_their_spaces():
    f = FieldMap.model_validate({"extract": "$.t", "generate": "t", "split": " ", "join": ", "})
    assert (f.split, f.join) == (" ", ", ")
    assert mapped([f], [{"t": "a b  c"}]).rows == [{"t": "a, b, c"}]


def test_discard_if_empty_drops_the_record_without_a_reject():
    fields = [
        fm("$.id", "external_id"),
        fm("$.n", "stock", type="integer"),
        fm("$.sku", "sku", trim=True, discard_if_empty=True),
    ]
    records = [{"id": "1", "n": 1, "sku": "S1"}, {"id": "2", "n": "x", "sku": "  "}, {"id": "3"}]
    records.append({"id": "4", "n": "x", "sku": "S4"})
    batch = mapped(fields, records)
    assert batch.rows == [{"external_id": "1", "stock": 1, "sku": "S1"}]
    assert batch.discarded == [1, 2]
    assert reasons(batch) == [(3, "stock", "$.n: 'x' is not a whole number")]
    with pytest.raises(ValidationError) as e:
        fm("$.sku", "sku", discard_if_empty=True, default="none")
    assert "Default: a field that discards its empty records takes no default" in str(e.value)


def test_immutable_fields_are_exposed_for_the_row_store():
    mapper = Mapper([fm("$.id", "external_id"), fm("$.c", "created_at", immutable=True)])
    assert mapper.immutable_fields == ["created_at"]
    mapping = [{**api_job()["mapping"][0], "immutable": True}, *api_job()["mapping"][1:]]
    assert job_problems(api_job(mapping=mapping)) == [
        "Mapping 1 › Immutable: external_id is the key of Products, which an update never changes"
    ]


# --- locale numbers and dates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("decimal", "text", "number"),
    [
        (",", "1.234,56", 1234.56),
        (",", "1 234,56", 1234.56),
        (",", "1\u00a0234,56", 1234.56),
        (",", "1\u202f234\u202f567,5", 1234567.5),
        (",", "-1234,5", -1234.5),
        (",", "1.234", 1234.0),
        (",", "12", 12.0),
        (".", "1,234.56", 1234.56),
        (".", "1 234.56", 1234.56),
        (".", "+0.5", 0.5),
    ],
)
def test_numbers_with_a_decimal_mark(decimal, text, number):
    batch = mapped([fm("$.p", "p", type="number", decimal=decimal)], [{"p": text}])
    assert batch.rows == [{"p": number}]


def test_bad_and_ambiguous_locale_numbers_are_rejects_with_a_reason():
    comma = [
        fm("$.p", "p", type="number", decimal=","),
        fm("$.q", "q", type="integer", decimal=","),
    ]
    records = [
        {"p": "1,234.56", "q": "1.000"},
        {"p": "1.23", "q": "1,5"},
        {"p": "1 234.567,8", "q": "abc"},
        {"p": 2.5, "q": 3},
    ]
    batch = mapped(comma, records)
    assert batch.rows == [{"p": 2.5, "q": 3}]
    comma_form = "is not a number with a decimal comma such as 1.234,56 or 1 234,56"
    assert reasons(batch) == [
        (0, "p", f"$.p: '1,234.56' {comma_form}; it reads as a decimal point"),
        (1, "p", f"$.p: '1.23' {comma_form}; it reads as a decimal point"),
        (1, "q", "$.q: '1,5' is not a whole number"),
        (2, "p", f"$.p: '1 234.567,8' {comma_form}"),
        (2, "q", f"$.q: 'abc' {comma_form}"),
    ]
    point = mapped([fm("$.p", "p", type="number", decimal=".")], [{"p": "1,5"}])
    assert reasons(point) == [
        (
            0,
            "p",
            "$.p: '1,5' is not a number with a decimal point such as 1,234.56 or 1 234.56; "
            "it reads as a decimal comma",
        )
    ]
    with pytest.raises(ValidationError) as e:
        fm("$.p", "p", decimal=",")
    assert "Decimal mark: is for number and integer fields" in str(e.value)


def test_dates_in_a_time_zone_are_given_in_utc():
    f = fm("$.t", "t", type="datetime", format="%d/%m/%Y %H:%M", timezone="Europe/Paris")
    iso = fm("$.t", "t", type="datetime", timezone="America/New_York")
    records = [{"t": "15/01/2026 10:00"}, {"t": "15/07/2026 10:00"}, {"t": "29/03/2026 02:30"}]
    batch = mapped([f], records)
    assert batch.rows == [{"t": "2026-01-15T09:00:00+00:00"}, {"t": "2026-07-15T08:00:00+00:00"}]
    assert reasons(batch) == [
        (
            2,
            "t",
            "$.t: '29/03/2026 02:30' is a time that does not exist in Europe/Paris "
            "(clocks moved on)",
        )
    ]
    assert mapped([iso], [{"t": "2026-01-15T10:00"}, {"t": "2026-01-15T10:00+01:00"}]).rows == [
        {"t": "2026-01-15T15:00:00+00:00"},
        {"t": "2026-01-15T09:00:00+00:00"},
    ]
    mapping = [
        *api_job()["mapping"],
        {"extract": "$.u", "generate": "updated_at", "type": "datetime", "timezone": "Paris"},
        {"extract": "$.c", "generate": "created_at", "type": "date", "timezone": "UTC"},
    ]
    assert job_problems(api_job(mapping=mapping)) == [
        "Mapping 4 › Time zone: 'Paris' is not a time zone (an IANA name such as Europe/Paris "
        "or UTC)",
        "Mapping 5 › Time zone: is for datetime fields (a date has no time to convert)",
    ]


# --- CSV rows, the builder's grid ---------------------------------------------------------


def test_csv_rows_with_templates_and_lookups():
    columns = ["id", "First Name", "last", "status"]
    fields = [
        fm("id", "external_id"),
        fm(generate="name", template='{{ record["First Name"] }} {{ last }}'),
        fm("status", "status", lookup="status_map"),
    ]
    lines = [["1", "Ada", "L", "A"], ["2", "Bo", "M", "Q"]]
    batch = mapped(fields, lines, [STATUS], columns=columns)
    assert batch.rows == [{"external_id": "1", "name": "Ada L", "status": "active"}]
    assert reasons(batch) == [(1, "status", "status: 'Q' is not in the lookup 'status_map'")]


def test_the_grid_shows_transform_problems_in_their_column():
    rows = [
        {"extract": "$.id", "generate": "external_id"},
        {"generate": "name", "template": "{{ first"},
        {"extract": "$.s", "generate": "status", "lookup": "nope"},
        {"extract": "$.d", "generate": "description", "decimal": ","},
        {"generate": "brand", "template": "{{ b }}"},
    ]
    fields, problems = typed_fields(rows, entity("Products"), [STATUS])
    assert [f.generate for f in fields] == ["external_id", "brand"]
    assert problems[1]["template"].startswith("line 1: unexpected end of template")
    assert problems[2] == {"lookup": "'nope' is not a lookup of this job (its lookups: status_map)"}
    assert problems[3] == {"decimal": "is for number and integer fields"}


# --- a real run and the CLI ----------------------------------------------------------------


def _transforming(store) -> None:
    """The demo products job with a lookup (category codes, cat-6 left out), a template and a
    date in a zone."""
    categories = {f"cat-{n}": f"category-{n}" for n in range(6)}
    lookups = [Lookup(name="categories", map=categories)]
    mapping = [
        fm("$.id", "external_id"),
        fm(generate="name", template="{{ title }} ({{ price.amount | round(1) }} EUR)"),
        fm("$.category.code", "classification_category_id", lookup="categories"),
        fm("$.active", "status", lookup="activity"),
        fm("$.updatedAt", "updated_at", type="datetime", timezone="Europe/Paris"),
    ]
    lookups.append(Lookup(name="activity", map={"true": "active", "false": "inactive"}))
    store.modify(
        "jobs",
        PRODUCTS,
        lambda j: j.model_copy(update={"lookups": lookups, "mapping": mapping}),
        source="cli",
    )


def test_a_run_with_lookups_and_a_template(store, sandbox):
    demo(store, sandbox)
    _transforming(store)
    run = run_job(store, PRODUCTS)
    # 95 products; those in category cat-6 (i % 7 == 6: 13 of them) are not in the lookup.
    assert (run.status, run.records, run.rows_written, run.rows_rejected) == ("partial", 95, 82, 13)
    rows = {r["external_id"]: r for r in read_rows(store.home, "Products", limit=100)[0]}
    assert rows["P00001"]["name"] == "Product 1 (8.7 EUR)"
    assert rows["P00001"]["classification_category_id"] == "category-1"
    assert (rows["P00001"]["status"], rows["P00005"]["status"]) == ("active", "inactive")
    assert rows["P00001"]["updated_at"] == "2026-02-02T08:00:00+00:00"
    assert "P00006" not in rows
    saved = json.loads(store.get("jobs", PRODUCTS).model_dump_json())
    assert saved["lookups"][0]["on_miss"] == "reject"


def test_the_cli_preview_shows_transformed_rows_and_rejects(home, store, sandbox):
    demo(store, sandbox)
    _transforming(store)
    out = runner("preview", PRODUCTS, "--pages", "1", "--json", home=home)
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    assert trace["rows"][0]["name"] == "Product 1 (8.7 EUR)"
    reason = "$.category.code: 'cat-6' is not in the lookup 'categories'"
    assert trace["rejects"] == [  # the first page's products 6, 13 and 20
        {"record": n, "field": "classification_category_id", "reason": reason} for n in (5, 12, 19)
    ]
