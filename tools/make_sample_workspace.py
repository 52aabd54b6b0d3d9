"""Write the reference images and wardrobe.txt files of the bundled sample combos.

Layout: ``combos/{Wardrobe}_combo/{Style}_UI_Combos/{combo_id}/`` with one image per role
(wardrobe, pose, ui, and in some combos product and/or bottom) plus ``wardrobe.txt``.
The images are original procedural drawings made by this script with Pillow primitives;
they are released under CC0-1.0. The output is deterministic: fixed seeds, no timestamps,
no network, so running the script twice gives byte-identical files.

Usage: python tools/make_sample_workspace.py [--root combos]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
STYLES = {"Studio": range(0, 6), "Orange": range(9, 15)}
WARDROBES = {"Hoodie_combo": "hoodie", "longsleeve_combo": "longsleeve", "t-shirt_combo": "tshirt"}
COLOURS: list[tuple[str, RGB]] = [
    ("heather-grey", (160, 160, 158)),
    ("black", (30, 30, 32)),
    ("navy", (34, 48, 86)),
    ("forest-green", (44, 92, 62)),
    ("burgundy", (118, 34, 52)),
    ("sand", (206, 184, 146)),
    ("sky-blue", (128, 178, 222)),
    ("charcoal", (70, 72, 76)),
    ("olive", (112, 114, 60)),
    ("off-white", (242, 238, 228)),
    ("dusty-pink", (214, 156, 160)),
    ("burnt-orange", (196, 92, 40)),
]
DESCRIPTIONS = {
    "hoodie": "{C} zip-up hoodie, full-length YKK zipper, kangaroo pocket, ribbed cuffs and hem, "
    "small embroidered beli logo on the left chest.",
    "longsleeve": "{C} long-sleeve training tee, slim athletic fit, crew neck, thumbholes at "
    "the cuffs, small reflective beli logo on the left chest.",
    "tshirt": "{C} crew-neck performance t-shirt, regular fit, short set-in sleeves, small "
    "printed beli logo on the left chest.",
}
EXTRA_SENTENCES = [
    "Matte fabric with a subtle texture, no shine.",
    "The colour must match the reference photo exactly.",
    "Flat-lock seams, tag-free neck label.",
    "",
]
UI_PALETTES: dict[str, dict[str, RGB]] = {
    "Studio": {
        "bg": (250, 250, 250),
        "bar": (20, 20, 20),
        "bar_text": (255, 255, 255),
        "card": (226, 226, 228),
        "line": (176, 176, 180),
        "button": (20, 20, 20),
    },
    "Orange": {
        "bg": (255, 243, 226),
        "bar": (242, 118, 30),
        "bar_text": (255, 250, 242),
        "card": (252, 214, 170),
        "line": (70, 52, 40),
        "button": (46, 32, 26),
    },
}
# Mannequin poses on a 100 x 160 grid (shoulders at (38, 34) and (62, 34), hips at y 90), as
# x, y pairs: elbow L, elbow R, hand L, hand R, knee L, knee R, foot L, foot R (L/R as seen).
POSES: dict[str, tuple[int, ...]] = {
    "standing": (34, 56, 66, 56, 33, 78, 67, 78, 44, 110, 56, 110, 43, 148, 57, 148),
    "walking": (30, 54, 70, 52, 26, 72, 76, 68, 38, 110, 62, 108, 30, 146, 68, 148),
    "arms crossed": (34, 56, 66, 56, 62, 50, 38, 52, 45, 110, 55, 110, 42, 148, 58, 148),
    "mid close-up": (32, 56, 68, 56, 40, 66, 60, 66, 46, 110, 54, 110, 46, 148, 54, 148),
    "hands on hips": (24, 52, 76, 52, 40, 68, 60, 68, 42, 110, 58, 110, 36, 148, 64, 148),
    "arms raised": (30, 16, 70, 16, 34, 0, 66, 0, 46, 110, 54, 110, 45, 148, 55, 148),
}
JOINTS = ("le", "re", "lh", "rh", "lk", "rk", "lf", "rf")


def shade(colour: RGB, factor: float) -> RGB:
    """Darken (factor < 1) or lighten (factor > 1) a colour, clamped to 0..255."""
    r, g, b = (max(0, min(255, round(c * factor))) for c in colour)
    return (r, g, b)


def label(img: Image.Image, text: str) -> None:
    """Stamp a small tag such as 'ui - C-U-003' in the top-left corner."""
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=24)
    right = 24 + round(draw.textlength(text, font=font)) + 24
    draw.rounded_rectangle((16, 16, right, 58), radius=10, fill=(255, 255, 255), outline=(0, 0, 0))
    draw.text((28, 22), text, fill=(0, 0, 0), font=font)


def draw_wardrobe(kind: str, colour: RGB) -> Image.Image:
    """Flat-lay garment seen from the front: t-shirt, long-sleeve tee or zip hoodie."""
    img = Image.new("RGB", (1024, 1024), (222, 216, 206))
    d = ImageDraw.Draw(img)
    edge, trim = shade(colour, 0.6), shade(colour, 0.8)
    if kind == "hoodie":  # hood behind the collar
        d.ellipse((392, 150, 632, 360), fill=colour, outline=edge, width=4)
        d.ellipse((440, 200, 584, 330), fill=edge)
    # Left sleeve: shoulder, outer cuff, inner cuff, armpit; the right one is its mirror image.
    short = [(332, 250), (200, 420), (290, 470), (340, 400)]
    left = short if kind == "tshirt" else [(332, 250), (170, 760), (250, 780), (340, 420)]
    for sleeve in (left, [(1024 - x, y) for x, y in left]):
        d.polygon(sleeve, fill=colour, outline=edge, width=4)
        d.line(sleeve[1:3], fill=trim if kind == "tshirt" else edge, width=22)  # cuff / hem
    d.rounded_rectangle((332, 250, 692, 860), radius=30, fill=colour, outline=edge, width=4)
    if kind == "hoodie":
        d.rectangle((334, 818, 690, 858), fill=trim)  # ribbed hem
        d.polygon([(400, 640), (624, 640), (660, 790), (364, 790)], fill=trim, outline=edge)
        d.line([(512, 262), (512, 858)], fill=(40, 40, 40), width=6)  # zipper
        for y in range(272, 850, 14):
            d.line([(505, y), (519, y)], fill=(90, 90, 90), width=3)
        d.rectangle((504, 262, 520, 292), fill=(200, 200, 205))  # zipper pull
        d.line([(480, 300), (474, 420)], fill=(245, 245, 240), width=5)  # drawcords
        d.line([(544, 300), (550, 420)], fill=(245, 245, 240), width=5)
    else:
        d.chord((442, 210, 582, 310), 0, 180, fill=edge)  # crew neck
        d.arc((436, 204, 588, 318), 0, 180, fill=trim, width=10)
    logo = (600, 330, 640, 370)
    d.ellipse(logo, fill=(250, 250, 250) if sum(colour) < 600 else (30, 30, 30))
    return img


def draw_pose(name: str, variant: int) -> Image.Image:
    """Mannequin figure on a studio backdrop (the mid close-up is cropped at the waist)."""
    img = Image.new("RGB", (1024, 1280), shade((214, 212, 208), 0.96 + (variant % 3) * 0.02))
    d = ImageDraw.Draw(img)
    coords = POSES[name]
    pairs = [(coords[i], coords[i + 1]) for i in range(0, len(coords), 2)]
    p = {"ls": (38, 34), "rs": (62, 34), **dict(zip(JOINTS, pairs, strict=True))}
    if name == "mid close-up":
        scale, oy = 14.0, -148.0
    else:
        scale, oy = 6.4, 120.0
        d.rectangle((0, 1150, 1024, 1280), fill=(188, 184, 178))  # floor

    def at(xy: tuple[int, int]) -> tuple[float, float]:
        return 512 + (xy[0] - 50) * scale, oy + (xy[1] + 20) * scale

    body, limbs, width = (120, 112, 104), (84, 78, 72), round(5 * scale)
    d.polygon([at(p["ls"]), at(p["rs"]), at((57, 92)), at((43, 92))], fill=body)  # torso
    d.line([at((50, 20)), at((50, 34))], fill=body, width=round(width * 0.9))  # neck
    hx, hy, r = *at((50, 12)), 10 * scale
    d.ellipse((hx - r * 0.8, hy - r, hx + r * 0.8, hy + r), fill=body)  # head
    chains = [
        ((46, 90), p["lk"], p["lf"]),
        ((54, 90), p["rk"], p["rf"]),
        (p["ls"], p["le"], p["lh"]),
        (p["rs"], p["re"], p["rh"]),
    ]
    for chain in chains:
        points = [at(j) for j in chain]
        d.line(points, fill=limbs, width=width, joint="curve")
        for x, y in points:
            d.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=limbs)
    return img


def draw_ui(style: str, rng: random.Random) -> Image.Image:
    """Phone app screen: status bar, header bar, hero card, text lines, button, tab bar."""
    pal = UI_PALETTES[style]
    img = Image.new("RGB", (576, 1024), pal["bg"])
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=30)
    d.text((28, 14), "9:41", fill=pal["button"], font=font)
    d.rounded_rectangle((490, 22, 540, 42), radius=4, outline=pal["button"], width=3)
    d.rectangle((494, 26, 526, 38), fill=pal["button"])
    d.rectangle((0, 64, 576, 150), fill=pal["bar"])
    d.text((32, 88), "beli", fill=pal["bar_text"], font=ImageFont.load_default(size=40))
    for i in range(3):  # menu icon
        d.rectangle((500, 90 + i * 14, 544, 96 + i * 14), fill=pal["bar_text"])
    hero_bottom = rng.choice([470, 520, 560])
    d.rounded_rectangle((28, 176, 548, hero_bottom), radius=24, fill=pal["card"])
    d.ellipse((248, 220, 328, 300), fill=pal["line"])  # placeholder for the model
    d.rounded_rectangle((218, 310, 358, hero_bottom), radius=40, fill=pal["line"])
    y = hero_bottom + 36
    d.rounded_rectangle((28, y, 28 + rng.randint(300, 460), y + 30), radius=8, fill=pal["button"])
    for _ in range(rng.randint(3, 5)):
        y += 46
        d.rounded_rectangle((28, y, 28 + rng.randint(240, 500), y + 18), radius=6, fill=pal["line"])
    text = rng.choice(["Shop now", "Start workout", "Join the drop", "Add to bag"])
    d.rounded_rectangle((28, 850, 548, 920), radius=35, fill=pal["button"])
    tw = d.textlength(text, font=font)
    d.text((288 - tw / 2, 866), text, fill=pal["bg"], font=font)
    d.line([(0, 950), (576, 950)], fill=pal["card"], width=2)
    for i in range(4):
        d.ellipse((62 + i * 132, 968, 98 + i * 132, 1004), fill=pal["bar" if i == 0 else "line"])
    return img


def draw_product(variant: int) -> Image.Image:
    """Shipping box (even variant) or water bottle (odd variant) with a beli mark."""
    img = Image.new("RGB", (1024, 1024), (232, 228, 220))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=64)
    if variant % 2 == 0:
        d.polygon([(232, 380), (512, 500), (512, 860), (232, 740)], fill=(196, 150, 98))
        d.polygon([(512, 500), (792, 380), (792, 740), (512, 860)], fill=(170, 124, 76))
        d.polygon([(232, 380), (512, 260), (792, 380), (512, 500)], fill=(216, 176, 126))
        d.line([(372, 320), (652, 440)], fill=(150, 112, 70), width=26)  # tape
        d.text((580, 560), "beli", fill=(40, 30, 20), font=font)
    else:
        d.rounded_rectangle((462, 150, 562, 250), radius=12, fill=(40, 40, 44))  # cap
        d.rounded_rectangle((382, 240, 642, 880), radius=70, fill=(70, 130, 170))
        d.rectangle((382, 460, 642, 640), fill=(245, 245, 240))  # label band
        d.text(
            (512 - d.textlength("beli", font=font) / 2, 510), "beli", fill=(20, 20, 20), font=font
        )
    return img


def draw_bottom(variant: int, colour: RGB) -> Image.Image:
    """Joggers (even variant) or training shorts (odd variant), flat-lay from the front."""
    img = Image.new("RGB", (1024, 1152), (226, 222, 214))
    d = ImageDraw.Draw(img)
    joggers = variant % 2 == 0
    top, edge = (120 if joggers else 330), shade(colour, 0.6)
    hem = top + (920 if joggers else 460)
    for side in (-1, 1):
        outer, foot = 512 + side * 250, 512 + side * (200 if joggers else 270)
        foot_in = 512 + side * (60 if joggers else 30)
        crotch = (512 + side * 16, top + 260)
        d.polygon(
            [(outer, top), (512, top), crotch, (foot_in, hem), (foot, hem)],
            fill=colour,
            outline=edge,
            width=4,
        )
        if joggers:
            d.line([(foot_in, hem - 20), (foot, hem - 20)], fill=edge, width=36)  # cuffs
    d.rectangle((262, top - 40, 762, top + 20), fill=shade(colour, 0.75), outline=edge, width=4)
    for side in (-1, 1):  # drawcords
        d.line(
            [(512 + side * 32, top + 20), (512 + side * 42, top + 130)],
            fill=(240, 240, 236),
            width=5,
        )
    return img


def save(img: Image.Image, path: Path) -> None:
    """Save without metadata: PNG optimized, JPEG quality 80 (deterministic bytes)."""
    if path.suffix == ".png":
        img.save(path, optimize=True)
    else:
        img.save(path, quality=80, optimize=True)


def build(root: Path) -> int:
    """Write every combo under ``root``; returns the number of image files written."""
    written = 0
    for w_index, (folder, kind) in enumerate(WARDROBES.items()):
        combos = [(style, n) for style, numbers in STYLES.items() for n in numbers]
        for c_index, (style, number) in enumerate(combos):
            combo_id = f"C-U-{number:03d}"
            combo_dir = root / folder / f"{style}_UI_Combos" / combo_id
            combo_dir.mkdir(parents=True, exist_ok=True)
            for old in combo_dir.iterdir():
                if old.suffix.lower() in IMAGE_SUFFIXES:
                    old.unlink()
            rng = random.Random(f"{folder}/{style}/{combo_id}")
            name, colour = COLOURS[(c_index + 4 * w_index) % len(COLOURS)]
            bottom_colour = COLOURS[(c_index + 4 * w_index + 7) % len(COLOURS)][1]
            pose = list(POSES)[number % len(POSES)]
            images = {
                "wardrobe.jpg": draw_wardrobe(kind, colour),
                "pose.jpg": draw_pose(pose, number),
                "ui.png": draw_ui(style, rng),
            }
            extras = (number + w_index) % 4
            if extras in (1, 3):
                images["product.jpg"] = draw_product(number // 2 + w_index)
            if extras in (2, 3):
                images["bottom.png"] = draw_bottom(number // 3 + w_index, bottom_colour)
            for filename, img in images.items():
                role = filename.split(".")[0]
                label(img, f"{role} - {combo_id}" + (f" ({pose})" if role == "pose" else ""))
                save(img, combo_dir / filename)
                written += 1
            text = DESCRIPTIONS[kind].format(C=name.capitalize())
            extra = EXTRA_SENTENCES[(number + w_index) % len(EXTRA_SENTENCES)]
            (combo_dir / "wardrobe.txt").write_text(f"{text} {extra}".strip() + "\n", "utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the sample combos (CC0-1.0 images).")
    default_root = Path(__file__).resolve().parent.parent / "combos"
    parser.add_argument("--root", type=Path, default=default_root, help="combos root to write")
    args = parser.parse_args()
    count = build(args.root)
    print(f"wrote {count} images under {args.root}")


if __name__ == "__main__":
    main()
