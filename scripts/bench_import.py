"""``python scripts/bench_import.py``: the cost of importing a large CRM export.

Writes a synthetic workbook and a HubSpot-style deals CSV of ``--records`` records (owner
e-mails, amounts with thousands separators, close dates with times, a stage filter), then
compares, best of ``--repeat`` runs each:

- pandas reading the same CSV (``pandas.read_csv`` with its defaults), the baseline;
- ``plan_import`` — everything ``kpireport import --dry-run`` does: reading and validating
  the workbook, reading the export, detecting its dialect, mapping owners, dates, numbers and
  filters, combining the months and working out every change;
- writing the plan into the workbook (openpyxl load and save, backup), reported separately:
  it depends on the workbook's size, not on the export's.

The promise is plan ÷ pandas ≤ 3. Not part of the test suite (a test runs it small).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

MAPPING = """\
[source]
owner = "Deal owner"
owner_match = "email"
date = "Close Date"
where = { "Pipeline" = "Sales Pipeline" }

[[measure]]
kpi = "K01"
column = "Amount"
combine = "sum"
where = { "Deal Stage" = "Closed won" }

[[measure]]
kpi = "K02"
combine = "count"
where = { "Deal Stage" = "Closed won" }
"""


def write_deals(path: Path, records: int, emails: list[str], year: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    stages = ["Closed won"] * 6 + ["Closed lost"] * 3 + ["Contract sent"]
    pipelines = ["Sales Pipeline"] * 9 + ["Partner Pipeline"]
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write('"Record ID","Deal Name","Deal Stage","Amount","Close Date","Deal owner",'
                  '"Pipeline","Create Date"\r\n')
        for number in range(records):
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            amount = rng.randint(100, 5_000_000) / 100
            closed = f"{year}-{month:02d}-{day:02d} {rng.randint(8, 18):02d}:" \
                f"{rng.randint(0, 59):02d}"
            out.write(f'{10_000 + number},"Deal {number} for Customer {rng.randint(1, 9999)}",'
                      f'"{rng.choice(stages)}","{amount:,.2f}","{closed}",'
                      f'"{rng.choice(emails)}","{rng.choice(pipelines)}",'
                      f'"{year}-01-{day:02d} 09:00"\r\n')


def best(repeat: int, func) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_import.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--employees", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import pandas as pd

    from kpireport.data_in import samples, template
    from kpireport.data_in.importer import apply_import, plan_import

    folder = Path(tempfile.mkdtemp(prefix="kpireport-bench-import-"))
    try:
        book = folder / "synthetic.xlsx"
        data = samples.synthetic(args.employees, year=2025)
        template.write_workbook(book, data)
        emails = [p["email"] for p in data.sheets["People"]]
        deals, mapping = folder / "deals.csv", folder / "deals.toml"
        write_deals(deals, args.records, emails, 2025)
        mapping.write_text(MAPPING)
        size = deals.stat().st_size / 2**20
        pandas_s, _ = best(args.repeat, lambda: pd.read_csv(deals))
        plan_s, plan = best(args.repeat, lambda: plan_import(deals, book, mapping))
        start = time.perf_counter()
        apply_import(plan)
        write_s = time.perf_counter() - start
        ratio = plan_s / pandas_s
        print(f"{args.records:,} records ({size:.1f} MiB), workbook of {args.employees} people; "
              f"best of {args.repeat}")
        print(f"  pandas.read_csv                      {pandas_s:8.3f} s")
        print(f"  plan (read, map, combine, diff)      {plan_s:8.3f} s   "
              f"{plan.used:,} records used, {len(plan.changes):,} changes, "
              f"{len(plan.bad)} bad")
        print(f"  write into the workbook (openpyxl)   {write_s:8.3f} s")
        print(f"  plan ÷ pandas = {ratio:.2f}  (promise ≤ 3: {'pass' if ratio <= 3 else 'FAIL'})")
        return 0 if ratio <= 3 else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
