"""Planning: what jobs a selection makes, in what order, with what prompt and output folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from imagegen.errors import InputError
from imagegen.planner import PlanRequest, build_prompt, output_name, plan
from imagegen.workspace import load_catalog, load_combos

from .conftest import Workspace, write_image, write_prompt


def request(ws: Workspace, **kw: object) -> PlanRequest:
    base: dict[str, object] = {
        "wardrobes": ("zip-hoodie",),
        "catalogs": ("v1.0", "v2.0"),
        "combos_root": ws.combos,
        "catalogs_root": ws.catalogs,
        "output": ws.root / "out",
    }
    base.update(kw)
    return PlanRequest(**base)  # type: ignore[arg-type]


def test_cross_product_is_combo_major_with_sequential_ids(workspace: Workspace) -> None:
    jobs = plan(request(workspace))
    # 3 hoodie combos (Orange first, then Studio by id) x 3 prompts that apply to zip-hoodie.
    assert [j.id for j in jobs] == [f"{n:03d}" for n in range(1, 10)]
    assert [(j.ui_style, j.combo, j.prompt_id) for j in jobs[:4]] == [
        ("Orange", "C-U-009", "GN01_morning"),
        ("Orange", "C-U-009", "ZH01_unboxing"),
        ("Orange", "C-U-009", "ZH02_travel"),
        ("Studio", "C-U-000", "GN01_morning"),
    ]
    assert "TS01_beach" not in {j.prompt_id for j in jobs}  # front matter restricts it


def test_filters_by_style_combo_and_prompt(workspace: Workspace) -> None:
    jobs = plan(request(workspace, ui_styles=("Studio",), combos=("C-U-001",), prompts=("ZH01",)))
    assert [(j.combo, j.prompt_id, j.short_id) for j in jobs] == [
        ("C-U-001", "ZH01_unboxing", "ZH01")
    ]


def test_output_folder_and_name_follow_the_seed_layout(workspace: Workspace) -> None:
    job = plan(request(workspace, ui_styles=("Studio",), combos=("C-U-000",), prompts=("ZH02",)))[0]
    out = workspace.root / "out"
    assert (
        Path(job.output_dir) == out / "zip-hoodie" / "v2.0" / "ZH02_travel" / "Studio" / "C-U-000"
    )
    assert (
        output_name(job, datetime(2025, 1, 15, 14, 30, 22), ".png")
        == "2025-01-15-14-30-22-ZH02-1K.png"
    )


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
    jobs = plan(request(workspace, wardrobes=("t-shirt",), catalogs=("v1.0",)))
    assert {j.prompt_id: j.aspect for j in jobs} == {"GN01_morning": "1:1", "TS01_beach": "4:5"}


def test_folder_name_works_without_alias(workspace: Workspace) -> None:
    assert len(plan(request(workspace, wardrobes=("Hoodie_combo",), catalogs=("v1.0",)))) == 3


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
        ({"quality": "4k"}, "did you mean 4K"),
        ({"aspect": "1:2"}, "--aspect '1:2' is not supported"),
    ],
)
def test_bad_selection_is_one_clear_error(
    workspace: Workspace, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        plan(request(workspace, **kw))


def test_bad_files_are_named(workspace: Workspace) -> None:
    empty = workspace.catalogs / "catalog_v3.0"
    empty.mkdir()
    with pytest.raises(InputError, match="catalog has no prompt files"):
        plan(request(workspace, catalogs=("v3.0",)))
    write_prompt(empty / "ZH05_blank.md", "   \n", wardrobe="zip-hoodie")
    with pytest.raises(InputError, match=r"ZH05_blank.md: prompt is empty"):
        plan(request(workspace, catalogs=("v3.0",)))
    (empty / "ZH05_blank.md").write_bytes(b"caf\xe9 latte")
    with pytest.raises(InputError, match="not UTF-8"):
        plan(request(workspace, catalogs=("v3.0",)))
    (empty / "ZH05_blank.md").write_bytes(b"\x89PNG\x00\x00")
    with pytest.raises(InputError, match="binary file"):
        plan(request(workspace, catalogs=("v3.0",)))


def test_combo_problems_are_named(workspace: Workspace) -> None:
    bare = workspace.combos / "Hoodie_combo" / "Studio_UI_Combos" / "C-U-005"
    bare.mkdir()
    with pytest.raises(InputError, match="C-U-005: combo has no reference images"):
        plan(request(workspace))
    (bare / "ui.png").write_text("not really a png")
    with pytest.raises(
        InputError, match=r"ui.png: has an image extension but is not a readable image"
    ):
        plan(request(workspace))
    (bare / "ui.png").unlink()
    for i in range(15):
        write_image(bare / f"extra{i:02d}.png")
    with pytest.raises(InputError, match="15 reference images, Nano Banana Pro takes at most 14"):
        plan(request(workspace))


def test_references_too_large_for_one_request_are_refused(
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("imagegen.workspace.MAX_INLINE_BYTES", 100)
    with pytest.raises(InputError, match=r"reference images total .* MB, over .* downscale them"):
        plan(request(workspace))
