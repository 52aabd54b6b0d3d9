"""``--dry-run``: what a batch would make and cost, readable at any size; needs no key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from itertools import accumulate
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from .. import pricing, providers
from ..executors.budget import Budget
from ..model import QUALITY_FIELD, JobState
from ..outputs import render_target
from ..sources import Plan

#: Rows shown in full before the table is summarised by section (``--json`` lists them all).
FULL_ROWS = 40
FIRST_ROWS = 15


def _local(js: JobState) -> bool:
    """A job its provider draws on this machine, free (no budget reservation)."""
    return providers.get(js.job.provider).local


def dry_run_rows(plan: Plan) -> list[dict[str, object]]:
    """One object per job: id, title, section, status, provider, model, quality, aspect,
    references, price in USD online and through the Batch API (null when no batch would take
    it), and the output path pattern."""
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
            "price_usd": 0.0 if js.status == "skipped" else round(pricing.price(js), 6),
            "batch_price_usd": None
            if (batch := pricing.batch_price(js)) is None
            else (0.0 if js.status == "skipped" else round(batch, 6)),
            "output": js.output
            if js.status == "skipped"
            else js.job.target.replace(QUALITY_FIELD, js.job.quality),
        }
        for js in plan.jobs
    ]


def print_notes(notes: Sequence[str], console: Console) -> None:
    """A plan's notes, each as ``Note: `` and its first line, any further lines under it."""
    for note in notes:
        first, *rest = note.splitlines() or [""]
        console.print(f"Note: {first}", markup=False, highlight=False)
        for line in rest:
            console.print(f"      {line}", markup=False, highlight=False)


def print_dry_run(
    plan: Plan, console: Console, *, max_cost: float | None, as_json: bool, batch: bool = False
) -> None:
    """The jobs and their estimated cost at their providers' published prices (with what
    planning would spend, ``plan.planning_usd``), online and, for the jobs a batch would take,
    through the Batch API, whose prices ``batch`` (``--batch``) makes the ones the budget is
    counted at; and the plan's notes. Nothing is written."""
    rows = dry_run_rows(plan)
    to_run = [js for js in plan.jobs if js.status != "skipped"]
    total = sum(pricing.price(js) for js in to_run)
    batched = [js for js in to_run if pricing.batch_price(js) is not None]
    batch_total = sum(pricing.run_price(js, True) for js in to_run) if batched else None
    if as_json:
        console.file.write(
            orjson.dumps(
                {
                    "describe": plan.describe,
                    "total_usd": round(total, 6),
                    "batch_total_usd": None if batch_total is None else round(batch_total, 6),
                    "planning_usd": plan.planning_usd,
                    "notes": list(plan.notes),
                    "jobs": rows,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
            + "\n"
        )
        return
    print_notes(plan.notes, console)
    if len(rows) > FULL_ROWS:
        sections: Counter[str] = Counter()
        costs: dict[str, float] = {}
        for js in to_run:
            sections[js.job.group[0]] += 1
            costs[js.job.group[0]] = costs.get(js.job.group[0], 0.0) + pricing.price(js)
        summary = Table(title=plan.describe)
        for column in ("section", "jobs", "cost (USD)"):
            summary.add_column(column, justify="left" if column == "section" else "right")
        for name, count in sections.items():
            summary.add_row(name, str(count), f"{costs[name]:.2f}")
        console.print(summary)
    settings = {f"{r['provider']} · {r['model']} · {r['quality']}" for r in rows}
    several = len(settings) > 1
    table = Table(
        title=None if len(rows) > FULL_ROWS else plan.describe,
        caption=None if several else next(iter(settings)),
    )
    columns = [
        "id",
        "job",
        "refs",
        "aspect",
        "USD",
        *(["batch USD"] if batch else []),
        *(["model"] if several else []),
        "file",
    ]
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "refs", "aspect", "USD", "batch USD"))
    for row in rows[: FIRST_ROWS if len(rows) > FULL_ROWS else len(rows)]:
        cells = [
            str(row["id"]),
            str(row["title"]) + (" (skipped: exists)" if row["status"] == "skipped" else ""),
            str(row["references"]),
            str(row["aspect"]),
            f"{row['price_usd']:.3f}",
        ]
        if batch:  # a job no batch takes runs online: its online price stands
            price = row["batch_price_usd"]
            cells.append("online" if price is None else f"{price:.3f}")
        if several:
            cells.append(f"{row['provider']} · {row['model']} · {row['quality']}")
        cells.append(Path(str(row["output"])).name)
        table.add_row(*cells)
    console.print(table)
    if len(rows) > FULL_ROWS:
        console.print(f"… {len(rows) - FIRST_ROWS} more jobs: --dry-run --json lists every one")
    skipped = len(rows) - len(to_run)
    local = sum(js.job.variants for js in to_run if _local(js))
    paid = [js for js in to_run if not _local(js)]
    shown = paid or to_run  # the paid jobs name the prices; drawn ones are counted apart
    first = shown[0].job if shown else None
    used = list(dict.fromkeys((js.job.provider, js.job.model) for js in shown))
    if len(used) == 1 and first is not None:
        where = f" at {first.quality} ({first.provider} {first.model}, "
    else:
        where = " (" + "".join(f"{p} {m}, " for p, m in used)
    as_of = ", ".join(dict.fromkeys(providers.get(p).prices_as_of for p, _ in used)) or "today"
    images = sum(js.job.variants for js in to_run)
    console.print(
        f"Estimated cost: ${total + plan.planning_usd:.2f} for {images} images"
        + (f" ({local} drawn locally, free)" if local else "")
        + f"{where}published prices of {as_of}, before thinking tokens)"
        + (f"; {skipped} already done, skipped" if skipped else "")
    )
    if batch_total is not None:
        rest = len(to_run) - len(batched)
        online = f", {rest} job(s) still online" if rest else ""
        console.print(
            f"Through the Batch API ({'--batch' if batch else 'add --batch'}): "
            f"${batch_total + plan.planning_usd:.2f} against ${total + plan.planning_usd:.2f} "
            f"online (half price for the {len(batched)} job(s) a batch takes{online}); "
            "results within 24 h"
        )
    if first is not None:
        example = render_target(first, datetime.now())
        console.print(f"First image would be written as {example}")
    if max_cost is not None:
        budget = Budget(max_cost, spent=plan.planning_usd)
        # Each call reserves its own price and the thinking allowance: N per job of N
        # variants; a job drawn locally reserves nothing.
        # With --batch, a job a batch takes reserves its batch price instead, once.
        held = [
            budget.reservation(batch_price)
            if batch and (batch_price := pricing.batch_price(js)) is not None
            else pricing.calls_left(js) * budget.reservation(pricing.call_price(js))
            for js in paid
        ]
        room = max_cost - plan.planning_usd
        fits = next((n for n, total in enumerate(accumulate(held)) if total > room), len(held))
        covered = "every job" if fits == len(held) else f"the first {fits} of {len(held)} jobs"
        console.print(
            f"Budget ${max_cost:.2f} covers {covered} (each job reserves its price + an "
            "allowance for thinking tokens)"
        )
