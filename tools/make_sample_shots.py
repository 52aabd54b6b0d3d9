"""Write the bundled sample of the shot-folder pipeline (seed 000), in the seed's own layout.

    output/anchors-selected/{pose}.png                       anchor images (reference poses)
    output/video-scripts/{exercise}/script.json              what the script stage wrote
    output/video-scripts/{exercise}/shots/{shot}/prompt.json engineered_prompt, anchor_image, ...

Two exercises with three shots each. One shot sits a level deeper (``shots/part-2/...``), one
has a non-ASCII name, one folder has no ``prompt.json`` (ignored), one anchor is given relative
to its shot folder instead of the working directory, and one shot already has its
``image.png`` (the run skips it). The drawings are original, made here with Pillow primitives,
CC0-1.0; the output is deterministic (no timestamps, no randomness).

Usage: python tools/make_sample_shots.py [--root output]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
SIZE = (768, 768)

# (name, joints as fractions of the canvas): head, neck, hips, hands, knees, feet.
POSES: dict[str, dict[str, tuple[float, float]]] = {
    "standing": {
        "head": (0.50, 0.16),
        "neck": (0.50, 0.25),
        "hips": (0.50, 0.52),
        "lhand": (0.36, 0.52),
        "rhand": (0.64, 0.52),
        "lknee": (0.45, 0.70),
        "rknee": (0.55, 0.70),
        "lfoot": (0.44, 0.90),
        "rfoot": (0.56, 0.90),
    },
    "squat": {
        "head": (0.50, 0.30),
        "neck": (0.50, 0.38),
        "hips": (0.46, 0.62),
        "lhand": (0.70, 0.42),
        "rhand": (0.72, 0.46),
        "lknee": (0.64, 0.66),
        "rknee": (0.66, 0.70),
        "lfoot": (0.52, 0.90),
        "rfoot": (0.56, 0.90),
    },
    "bent": {
        "head": (0.70, 0.36),
        "neck": (0.63, 0.40),
        "hips": (0.40, 0.50),
        "lhand": (0.58, 0.66),
        "rhand": (0.62, 0.66),
        "lknee": (0.44, 0.70),
        "rknee": (0.48, 0.70),
        "lfoot": (0.40, 0.90),
        "rfoot": (0.48, 0.90),
    },
}

SHOTS: dict[str, list[tuple[str, str, str]]] = {
    # exercise -> (shot folder, anchor pose, what the shot shows)
    "bodyweight-squat": [
        ("01-intro", "standing", "the athlete faces the camera, relaxed, ready to start"),
        ("02-bottom-position", "squat", "the bottom of the squat, thighs parallel, chest up"),
        ("03-récupération", "standing", "standing tall between sets, breathing out"),
    ],
    "bent-over-barbell-row": [
        ("01-setup", "bent", "hinged at the hips, barbell hanging at arm's length"),
        ("02-pull", "bent", "the bar pulled to the lower ribs, elbows close to the body"),
        ("part-2/03-common-mistake", "standing", "a rounded back, shown as what to avoid"),
    ],
}
BACKGROUNDS: dict[str, RGB] = {
    "standing": (232, 238, 244),
    "squat": (244, 236, 226),
    "bent": (230, 242, 232),
}


def draw_anchor(pose: str) -> Image.Image:
    """A flat figure in ``pose`` on a light background (a stand-in for a photographed anchor)."""
    img = Image.new("RGB", SIZE, BACKGROUNDS[pose])
    d = ImageDraw.Draw(img)
    j = {k: (x * SIZE[0], y * SIZE[1]) for k, (x, y) in POSES[pose].items()}
    body, width = (38, 58, 92), 26
    for a, b in (
        ("neck", "hips"),
        ("neck", "lhand"),
        ("neck", "rhand"),
        ("hips", "lknee"),
        ("hips", "rknee"),
        ("lknee", "lfoot"),
        ("rknee", "rfoot"),
    ):
        d.line([j[a], j[b]], fill=body, width=width, joint="curve")
    hx, hy = j["head"]
    d.ellipse([hx - 42, hy - 42, hx + 42, hy + 42], fill=body)
    d.rectangle([0, SIZE[1] - 40, SIZE[0], SIZE[1]], fill=(120, 120, 124))  # the gym floor
    return img


def prompt_for(exercise: str, shot: str, scene: str) -> str:
    return (
        f"Fitness video still, {exercise.replace('-', ' ')}, shot '{shot}': {scene}. "
        "Keep the athlete's pose, body proportions and camera angle from the anchor image. "
        "Bright modern gym, soft daylight from large windows, 35 mm lens, shallow depth of "
        "field, clean background, no text, no logos."
    )


def write(root: Path) -> None:
    anchors = root / "anchors-selected"
    anchors.mkdir(parents=True, exist_ok=True)
    for pose in POSES:
        draw_anchor(pose).save(anchors / f"{pose}.png", optimize=True)
    scripts = root / "video-scripts"
    for exercise, shots in SHOTS.items():
        folder = scripts / exercise
        folder.mkdir(parents=True, exist_ok=True)
        script = {"exercise": exercise, "shots": [s for s, _, _ in shots]}
        (folder / "script.json").write_text(json.dumps(script, indent=2) + "\n", encoding="utf-8")
        for n, (shot, pose, scene) in enumerate(shots):
            shot_dir = folder / "shots" / shot
            shot_dir.mkdir(parents=True, exist_ok=True)
            # The seed gives anchors relative to the working directory; one is relative to
            # its shot folder instead, which the source also accepts.
            depth = len(Path(shot).parts) + 3
            anchor = (
                f"{'../' * depth}anchors-selected/{pose}.png"
                if (exercise, n) == ("bent-over-barbell-row", 1)
                else f"{root.as_posix()}/anchors-selected/{pose}.png"
            )
            data = {
                "shot_id": shot.rsplit("/", 1)[-1],
                "engineered_prompt": prompt_for(exercise, shot, scene),
                "anchor_image": anchor,
                "anchor_id": pose,
                "duration_seconds": 4 + n,
            }
            (shot_dir / "prompt.json").write_text(
                json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    # A folder the script stage left without a prompt: ignored by the source.
    notes = scripts / "bodyweight-squat" / "shots" / "00-notes"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "README.txt").write_text("Storyboard notes; no image for this folder.\n")
    # One shot already made: a run skips it (and --force makes it again, keeping this one).
    done = scripts / "bodyweight-squat" / "shots" / "01-intro" / "image.png"
    draw_anchor("standing").resize((256, 256)).save(done, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path("output"))
    write(parser.parse_args().root)


if __name__ == "__main__":
    main()
