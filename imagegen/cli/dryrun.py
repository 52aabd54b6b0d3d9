"""``--dry-run``: what a batch would make and cost, readable at any size; needs no key."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import orjson
from rich.console import Console
from rich.table import Table

from ..executors.budget import Budget
from ..model import JobState
from ..outputs import render_target
from ..providers import ProviderInfo
from ..sources import Plan

#: Rows shown in full before the table is summarised by section (``--json`` lists them all).
FULL_ROWS = 40
FIRST_ROWS = 15


def _price(info: ProviderInfo, js: JobState) -> float:
    j = js.job
    return info.estimate(j.model, j.quality, j.aspect, len(j.references))


def _batch_price(info: ProviderInfo, js: JobState) -> float | None:
    """The job's price through the provider's Batch API (None without one)."""
    j = js.job
    if info.batch_estimate is None:
        return None
    return info.batch_estimate(j.model, j.quality, j.aspect, len(j.references))


def dry_run_rows(plan: Plan, info: ProviderInfo) -> list[dict[str, object]]:
    """One object per job: id, title, section, status, provider, model, quality, aspect,
    references, price in USD online and through the Batch API (null without one), and the
    output path pattern."""
    return [
        {
            "id": js.id,
            "title": js.job.title,
            "section": js.job.group[0],
            "status": js.status,
            "provider": js.job.provider,
            "model": js.job.model,
            "quality": js.job.quality,
            "aspect": js.job.aspect,
            "references": len(js.job.references),
            "price_usd": 0.0 if js.status == "skipped" else round(_price(info, js), 6),
            "batch_price_usd": None
            if (batch := _batch_price(info, js)) is None
            else (0.0 if js.status == "skipped" else round(batch, 6)),
            "output": js.output if js.status == "skipped" else js.job.target,
        }
        for js in plan.jobs
    ]


def print_dry_run(
    plan: Plan,
    info: ProviderInfo,
    console: Console,
    *,
    max_cost: float | None,
    as_json: bool,
    batch: bool = False,
) -> None:
    """The jobs and their estimated cost at published prices, online and (for a provider
    with one) through the Batch API, whose prices ``batch`` (``--batch``) makes the ones the
    budget is counted at; nothing is written."""
    rows = dry_run_rows(plan, info)
    to_run = [js for js in plan.jobs if js.status != "skipped"]
    total = sum(_price(info, js) for js in to_run)
    batch_total = sum(_batch_price(info, js) or 0.0 for js in to_run) if info.has_batch else None
    if as_json:
        console.file.write(
            orjson.dumps(
                {
                    "describe": plan.describe,
                    "total_usd": round(total, 6),
                    "batch_total_usd": None if batch_total is None else round(batch_total, 6),
                    "jobs": rows,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
            + "\n"
        )
        return
    if len(rows) > FULL_ROWS:
        sections: Counter[str] = Counter()
        costs: dict[str, float] = {}
        for js in to_run:
            sections[js.job.group[0]] += 1
            costs[js.job.group[0]] = costs.get(js.job.group[0], 0.0) + _price(info, js)
        summary = Table(title=plan.describe)
        for column in ("section", "jobs", "cost (USD)"):
            summary.add_column(column, justify="left" if column == "section" else "right")
        for name, count in sections.items():
            summary.add_row(name, str(count), f"{costs[name]:.2f}")
        console.print(summary)
    table = Table(title=None if len(rows) > FULL_ROWS else plan.describe)
    columns = ("id", "job", "refs", "model", "USD", *(("batch USD",) if batch else ()), "output")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows[: FIRST_ROWS if len(rows) > FULL_ROWS else len(rows)]:
        batch_cell = (f"{row['batch_price_usd'] or 0.0:.4f}",) if batch else ()
        table.add_row(
            str(row["id"]),
            str(row["title"]) + (" (skipped: exists)" if row["status"] == "skipped" else ""),
            str(row["references"]),
            f"{row['provider']} · {row['model']} · {row['quality']} {row['aspect']}",
            f"{row['price_usd']:.3f}",
            *batch_cell,
            str(row["output"]),
        )
    console.print(table)
    if len(rows) > FULL_ROWS:
        console.print(f"… {len(rows) - FIRST_ROWS} more jobs: --dry-run --json lists every one")
    skipped = len(rows) - len(to_run)
    first = to_run[0].job if to_run else None
    where = f" at {first.quality} ({first.provider} {first.model}" if first else " ("
    console.print(
        f"Estimated cost: ${total:.2f} for {len(to_run)} images{where}, published prices of "
        f"{info.prices_as_of}, before thinking tokens)"
        + (f"; {skipped} already done, skipped" if skipped else "")
    )
    if batch_total is not None:
        console.print(
            f"Through the Batch API ({'--batch' if batch else 'add --batch'}): "
            f"${batch_total:.2f}, half of ${total:.2f} online; results within 24 h"
        )
    if first is not None:
        example = render_target(first, datetime.now())
        console.print(f"First image would be written as {example}")
    if max_cost is not None:
        budget = Budget(max_cost)
        held = [
            budget.reservation((_batch_price(info, js) or 0.0) if batch else _price(info, js))
            for js in to_run
        ]
        fits = next((n for n in range(len(held)) if sum(held[: n + 1]) > max_cost), len(held))
        covered = "every job" if fits == len(held) else f"the first {fits} of {len(held)} jobs"
        console.print(
            f"Budget ${max_cost:.2f} covers {covered} (each job reserves its price + an "
            "allowance for thinking tokens)"
        )
