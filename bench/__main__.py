"""`make bench`: starts its own platform, measures every figure next to its baseline, stops
everything, writes bench/results/latest.json and prints a Markdown table.

`python -m bench [FIGURE ...]` runs only the named figure modules of bench/figures/ and prints
their table without replacing latest.json, the record of the last whole run."""

import asyncio
import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import Figure
from bench.stack import Stack, running_stack

FIGURES = [
    "ingestion",
    "rest",
    "summaries",
    "period_close",
    "lifecycle",
    "credits",
    "balance",
    "entitlements",
    "alerts",
    "settlement",
    "relay",
    "watcher",
    "collections",
]
RESULTS = Path(__file__).parent / "results" / "latest.json"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | value | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        baseline = f"{f.baseline}: {_number(f.baseline_value)}" if f.baseline else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        met = {True: "yes", False: "no", None: "-"}[f.met]
        value = f"{_number(f.value)} {f.unit}"
        lines.append(f"| {f.name} | {value} | {baseline} | {ratio} | {f.target or '-'} | {met} |")
    return "\n".join(lines)


async def measure(stack: Stack, names: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    for name in names:
        module = importlib.import_module(f"bench.figures.{name}")
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        figures += await module.measure(stack)
    return figures


def main() -> None:
    names = sys.argv[1:] or FIGURES
    with running_stack() as stack:
        figures = asyncio.run(measure(stack, names))
    if names != FIGURES:
        print(table(figures))
        return
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "time": datetime.now(UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "figures": [f.as_dict() for f in figures],
            },
            indent=2,
        )
        + "\n"
    )
    print(table(figures))


if __name__ == "__main__":
    main()
