"""Benchmark: a mapping with transforms against plain dict access, on 100,000 records.

    python bench/mapping.py [--records 100000] [--rounds 5]

Measures, on the same in-memory records (those of bench/engine.py, about 400 bytes each):

- hand-written plain dict access of 5 fields (3 strings, a number, an integer);
- the plain mapping of those 5 fields (the generated fast path);
- the full mapping: the same 5 fields, one field through a lookup (97 category codes to
  names) and one through a template (``{{ title }}, {{ price.amount | round(2) }} {{
  price.currency }}``);
- for reference, the full mapping written by hand (a dict lookup and an f-string).

Rounds alternate so that every measure sees the same machine; the best and the median round
are printed (the best is the least disturbed by other work on the machine). The target is the
full mapping within 3x the hand-written plain dict access.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import FIELDS, record
from studio.mapping import FieldMap, Lookup, Mapper

CATEGORIES = {f"cat-{n}": f"Category {n}" for n in range(97)}
TEMPLATE = "{{ title }}, {{ price.amount | round(2) }} {{ price.currency }}"


def plain_fields() -> list[FieldMap]:
    return [FieldMap(extract=e, generate=g, type=t) for e, g, t in FIELDS]


def full_mapper() -> Mapper:
    fields = [
        *plain_fields(),
        FieldMap(extract="$.category.code", generate="category", lookup="categories"),
        FieldMap(template=TEMPLATE, generate="description"),
    ]
    return Mapper(fields, lookups=[Lookup(name="categories", map=CATEGORIES)])


def by_hand(records: list[dict]) -> int:
    return len(
        [
            {
                "external_id": r["id"],
                "name": r["title"],
                "classification_category_id": r["category"]["code"],
                "price": r["price"]["amount"],
                "stock": r["stock"],
            }
            for r in records
        ]
    )


def full_by_hand(records: list[dict]) -> int:
    names = CATEGORIES
    return len(
        [
            {
                "external_id": r["id"],
                "name": r["title"],
                "classification_category_id": r["category"]["code"],
                "price": r["price"]["amount"],
                "stock": r["stock"],
                "category": names[r["category"]["code"]],
                "description": f"{r['title']}, {round(r['price']['amount'], 2)} "
                f"{r['price']['currency']}",
            }
            for r in records
        ]
    )


def timed(fn, records: list[dict]) -> float:
    started = time.perf_counter()
    fn(records)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    records = [record(i) for i in range(args.records)]
    plain, full = Mapper(plain_fields()), full_mapper()
    check = full.map(records[:3])
    assert not check.rejects and check.rows[1]["category"] == "Category 1", check
    measures = {
        "dict access, 5 fields (by hand)": by_hand,
        "plain mapping, 5 fields": lambda rs: len(plain.map(rs).rows),
        "full mapping: + lookup + template": lambda rs: len(full.map(rs).rows),
        "full mapping by hand (dict + f-string)": full_by_hand,
    }
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(args.rounds):
        for name, fn in measures.items():
            times[name].append(timed(fn, records))
    print(f"{args.records:,} records, {args.rounds} rounds: best and median round")
    for how, pick in (("best", min), ("median", statistics.median)):
        base = pick(times["dict access, 5 fields (by hand)"])
        for name, spent in times.items():
            t = pick(spent)
            print(
                f"{how:<7}{name:<40} {args.records / t:>11,.0f} rec/s {t * 1000:>6.0f} ms "
                f"{t / base:>6.2f}x dict access"
            )
        full = pick(times["full mapping: + lookup + template"]) / base
        print(f"{how:<7}full mapping / dict access: {full:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
