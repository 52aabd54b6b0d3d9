"""The combos source: what jobs a selection makes, in what order, with what prompt and output."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from imagegen.errors import InputError
from imagegen.model import Job
from imagegen.outputs import render_target
from imagegen.sources.combos import build_prompt
from imagegen.sources.combos.workspace import load_catalog, load_combos

from .conftest import Workspace, plan_combos, write_prompt


def plan(ws: Workspace, **kw: Any) -> list[Job]:
    return plan_combos(ws, **kw)


def test_cross_product_is_combo_major_with_sequential_ids(workspace: Workspace) -> None:
    jobs = plan(workspace)
    # 3 hoodie combos (Orange first, then Studio by id) x 3 prompts that apply to zip-hoodie.
    assert [j.id for j in jobs] == [f"{n:03d}" for n in range(1, 10)]
    assert [(j.label("ui_style"), j.label("combo"), j.label("prompt_id")) for j in jobs[:4]] == [
        ("Orange", "C-U-009", "GN01_morning"),
        ("Orange", "C-U-009", "ZH01_unboxing"),
        ("Orange", "C-U-009", "ZH02_travel"),
        ("Studio", "C-U-000", "GN01_morning"),
    ]
    assert "TS01_beach" not in {j.label("prompt_id") for j in jobs}  # front matter restricts it


def test_filters_by_style_combo_and_prompt(workspace: Workspace) -> None:
    jobs = plan(workspace, ui_styles=("Studio",), combos=("C-U-001",), prompts=("ZH01",))
    assert [(j.label("combo"), j.label("prompt_id"), j.label("short_id")) for j in jobs] == [
        ("C-U-001", "ZH01_unboxing", "ZH01")
    ]


def test_output_folder_and_name_follow_the_seed_layout(workspace: Workspace) -> None:
    job = plan(workspace, ui_styles=("Studio",), combos=("C-U-000",), prompts=("ZH02",))[0]
    out = workspace.root / "out"
    path = render_target(job, datetime(2025, 1, 15, 14, 30, 22))
    assert path.parent == out / "zip-hoodie" / "v2.0" / "ZH02_travel" / "Studio" / "C-U-000"
    assert path.name == "2025-01-15-14-30-22-ZH02-1K.png"


def test_prompt_text_has_catalog_prompt_references_and_wardrobe(workspace: Workspace) -> None:
    combo = load_combos(workspace.combos, "zip-hoodie", ["Orange"])[0]
    prompt = next(p for p in load_catalog(workspace.catalogs, "v1.0") if p.short_id == "ZH01")
    text = build_prompt(prompt, combo)
    assert text.startswith("Unboxing on a desk.\n\n")
    assert "1. wardrobe:" in text and "4. ui:" in text
    assert "Keep exact: layout structure, text positions, color scheme, typography style." in text
    assert text.endswith("Replace model wardrobe with: Red zip hoodie")


def test_references_are_the_combos_own_files_in_role_order(workspace: Workspace) -> None:
    combo = load_combos(workspace.combos, "zip-hoodie", ["Orange"])[0]
    assert [r.role for r in combo.references] == ["wardrobe", "bottom", "product", "ui"]
    assert all(r.path.parent == combo.path for r in combo.references)


def test_front_matter_aspect_overrides_the_flag(workspace: Workspace) -> None:
    jobs = plan(workspace, wardrobes=("t-shirt",), catalogs=("v1.0",))
    assert {j.label("prompt_id"): j.aspect for j in jobs} == {
        "GN01_morning": "1:1",
        "TS01_beach": "4:5",
    }


def test_folder_name_works_without_alias(workspace: Workspace) -> None:
    assert len(plan(workspace, wardrobes=("Hoodie_combo",), catalogs=("v1.0",))) == 3


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"wardrobes": ("zip-hoody",)}, "unknown wardrobe 'zip-hoody': did you mean zip-hoodie"),
        ({"catalogs": ("v1.1",)}, "unknown catalog 'v1.1': did you mean v1.0"),
        ({"ui_styles": ("Orang",)}, "unknown UI style 'Orang': did you mean Orange"),
        ({"combos": ("C-U-08",)}, "unknown combo 'C-U-08'"),
        ({"prompts": ("ZH09",)}, "unknown prompt 'ZH09'"),
        ({"combos": ("../C-U-000",)}, "not a plain name"),
        ({"wardrobes": ("zip\x1bhoodie",)}, "not a plain name"),
    ],
)
def test_bad_selection_is_one_clear_error(
    workspace: Workspace, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        plan(workspace, **kw)


def test_bad_files_are_named(workspace: Workspace) -> None:
    empty = workspace.catalogs / "catalog_v3.0"
    empty.mkdir()
    with pytest.raises(InputError, match="catalog has no prompt files"):
        plan(workspace, catalogs=("v3.0",))
    write_prompt(empty / "ZH05_blank.md", "   \n", wardrobe="zip-hoodie")
    with pytest.raises(InputError, match=r"ZH05_blank.md: prompt is empty"):
        plan(workspace, catalogs=("v3.0",))
    (empty / "ZH05_blank.md").write_bytes(b"caf\xe9 latte")
    with pytest.raises(InputError, match="not UTF-8"):
        plan(workspace, catalogs=("v3.0",))
    (empty / "ZH05_blank.md").write_bytes(b"\x89PNG\x00\x00")
    with pytest.raises(InputError, match="binary file"):
        plan(workspace, catalogs=("v3.0",))


def test_combo_problems_are_named(workspace: Workspace) -> None:
    bare = workspace.combos / "Hoodie_combo" / "Studio_UI_Combos" / "C-U-005"
    bare.mkdir()
    with pytest.raises(InputError, match="C-U-005: combo has no reference images"):
        plan(workspace)
    (bare / "ui.png").write_text("not really a png")
    with pytest.raises(InputError, match=r"ui.png: not a whole, readable image"):
        plan(workspace)


def test_references_too_large_for_one_request_are_refused(
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("imagegen.sources.combos.workspace.MAX_INLINE_BYTES", 100)
    with pytest.raises(InputError, match=r"reference images total .* MB, over .* downscale them"):
        plan(workspace)


def test_a_catalog_combo_or_wardrobe_named_twice_is_planned_once(workspace: Workspace) -> None:
    """v1.0,1.0,catalog_v1.0 and an alias with its folder are one selection, not three."""
    once = plan(workspace, catalogs=("v1.0",))
    many = plan(
        workspace,
        wardrobes=("zip-hoodie", "Hoodie_combo"),
        catalogs=("v1.0", "1.0", "catalog_v1.0"),
        combos=("C-U-009", "C-U-009", "C-U-000"),
    )
    assert len(many) == len([j for j in once if j.label("combo") in ("C-U-009", "C-U-000")])
    assert len({(j.label("combo"), j.prompt_file) for j in many}) == len(many)


def test_prompt_parts_keep_the_catalog_text_apart_from_the_combo_block(
    workspace: Workspace,
) -> None:
    jobs = plan(workspace, catalogs=("v1.0",))
    by_prompt = {j.prompt_parts[0] for j in jobs if j.label("prompt_id") == "GN01_morning"}
    assert by_prompt == {"Morning run at dawn."}  # one stored text for every combo
    assert all(j.prompt == "".join(j.prompt_parts) for j in jobs)
