"""A workspace of real-size reference photos for the benchmark, made by the benchmark itself.

Real combos hold camera photos of 2-5 MB, 3-5 per combo (issue 15). Each photo here is a
2600 x 1950 JPEG (quality 90) of noise over a colour gradient, which compresses like a camera
photo: ~3 MB. Every photo is a different crop of one noise field, so each has content of its
own; making one costs ~40 ms (the field ~1 s, once).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..model import Job

WIDTH, HEIGHT = 2600, 1950
_MARGIN = 400
ROLES = ("ui", "wardrobe", "pose", "product")
PHOTO_PROMPT = (
    "A candid lifestyle photo of the model wearing the garment, soft morning light, shallow "
    "depth of field, the product in sharp focus, clean background, natural skin tones.\n\n"
    "Reference images, in order:\n1. ui: UI layout, composition, background, lighting\n"
    "2. wardrobe: the garment the model must wear\n3. pose: the model's pose and framing\n"
    "4. product: the product as it must appear\n"
    "Keep exact: layout structure, text positions, color scheme, typography style."
)


def make_photos(folder: Path, combos: int, per_combo: int = len(ROLES)) -> list[tuple[str, ...]]:
    """``combos`` folders of ``per_combo`` photos each (made once; reused when present);
    returns each combo's photo paths in role order."""
    paths = [
        tuple(str(folder / f"C-{c:03d}" / f"{ROLES[r % len(ROLES)]}.jpg") for r in range(per_combo))
        for c in range(combos)
    ]
    if all(Path(p).exists() for combo in paths for p in combo):
        return paths
    size = (WIDTH + _MARGIN, HEIGHT + _MARGIN)
    noise = Image.merge("RGB", [Image.effect_noise(size, 64) for _ in range(3)])
    ramp = Image.linear_gradient("L").resize(size)
    tint = Image.merge(
        "RGB", (ramp, ramp.rotate(90), ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    field = Image.blend(noise, tint, 0.55)
    n = 0
    for combo in paths:
        for path in combo:
            x, y = (n * 53) % _MARGIN, (n * 97 + n // 7) % _MARGIN
            n += 1
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            field.crop((x, y, x + WIDTH, y + HEIGHT)).save(target, format="JPEG", quality=90)
    return paths


def photo_jobs(root: Path, combos: list[tuple[str, ...]], count: int, model: str) -> list[Job]:
    """``count`` jobs cycling over the combos (prompt P00.. x combo), one output folder per
    prompt and combo as the combos source plans them."""
    width = max(5, len(str(count)))
    jobs = []
    for n in range(count):
        job_id = f"{n + 1:0{width}d}"
        combo = n % len(combos)
        prompt = f"P{(n // len(combos)) % 1000:03d}"
        jobs.append(
            Job(
                id=job_id,
                source="combos",
                title=f"{prompt}_bench + C-{combo:03d}",
                group=("photos · Studio", f"{prompt}_bench", f"C-{combo:03d}"),
                prompt_file=f"catalog_bench/{prompt}_bench.md",
                prompt_parts=(PHOTO_PROMPT, f" Benchmark job {job_id}."),
                references=combos[combo],
                target=str(root / "out" / prompt / f"C-{combo:03d}" / "{time}-{quality}.png"),
                quality="1K",
                aspect="1:1",
                model=model,
                labels=(("combo", f"C-{combo:03d}"), ("prompt_id", f"{prompt}_bench")),
            )
        )
    return jobs
