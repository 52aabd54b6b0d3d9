"""Write the bundled sample episode: ``samples/episodes/{episode_id}/chapters.json``.

A short Turkish Bitcoin lesson in the chapter schema the image stage reads (seeds 001 and 002):
every visual type, a chapter whose ``image_prompt`` is null (a text model writes it), titles
with Turkish letters (ş, ı, İ, ğ, ü). The text is original and released under CC0-1.0. The
output is deterministic: running the script twice gives byte-identical files.

Usage: python tools/make_sample_episode.py [--root samples/episodes]
"""

# The sample is Turkish on purpose: its dotless i (U+0131) is no typo.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EPISODE_ID = "sample-bitcoin-nedir"

# (chapter_id, title, visual type, visual description, image_prompt or None, narration)
CHAPTERS: list[tuple[str, str, str, str, str | None, str]] = [
    (
        "ch01",
        "Bitcoin Nedir?",
        "title_card",
        "Bölüm başlığı, marka renkleriyle",
        None,
        "Merhaba! Bu bölümde Bitcoin'in ne olduğunu ve nasıl çalıştığını konuşacağız.",
    ),
    (
        "ch02",
        "Bloklar ve Zincir",
        "diagram",
        "Birbirine bağlı bloklardan oluşan bir zincir",
        "An isometric diagram of six translucent cubes in a row, each linked to the next by a "
        "glowing orange chain link, every cube holding small stacked cards that stand for "
        "transactions, on a light grey background, soft studio light, flat modern style",
        "Bitcoin'in kayıt defteri, bloklardan oluşan bir zincirdir. Her blok bir öncekine "
        "bağlıdır; bu yüzden geçmişi değiştirmek neredeyse imkânsızdır.",
    ),
    (
        "ch03",
        "Madencilik Nasıl Çalışır?",
        "b_roll",
        "Bir veri merkezinde sıra sıra çalışan madencilik cihazları",
        None,
        "Madenciler, yeni blokları zincire eklemek için yoğun bir hesaplama yarışına girer. "
        "Kazanan, yeni bitcoinler ve işlem ücretleriyle ödüllendirilir.",
    ),
    (
        "ch04",
        "Cüzdan Kurulumu",
        "screen_share",
        "Bir mobil cüzdan uygulamasının kurulum ekranı",
        "A clean mockup of a generic mobile wallet app on a phone screen, showing a setup step "
        "with a grid of twelve blank word slots and a large continue button, neutral colours "
        "with an orange accent, no brand names, front view, soft shadow",
        "Bir cüzdan kurarken size on iki kelimelik bir kurtarma ifadesi verilir. "
        "Bu kelimeleri kâğıda yazın ve kimseyle paylaşmayın.",
    ),
    (
        "ch05",
        "İşlem Ücretleri",
        "diagram",
        "Ücrete göre sıralanan işlemler ve bir sonraki blok",
        "A flat infographic-style illustration of a queue of envelopes of different sizes "
        "waiting in front of an open box, the envelopes with more orange coins attached moving "
        "to the front, clean white background, minimalist, no text",
        "Bloklarda yer sınırlıdır. Daha yüksek ücret ödeyen işlemler, madenciler tarafından "
        "genellikle daha önce seçilir.",
    ),
    (
        "ch06",
        "Özet ve Sonraki Adımlar",
        "talking_head",
        "Sunucu kameraya konuşur",
        None,
        "Bugün blokları, madenciliği, cüzdanları ve ücretleri gördük. Bir sonraki bölümde "
        "kendi düğümünüzü çalıştırmayı öğreneceğiz. Görüşmek üzere!",
    ),
]


def episode_document() -> dict[str, Any]:
    """The sample ``chapters.json`` as a JSON value."""
    return {
        "schema_version": "1.0",
        "episode_id": EPISODE_ID,
        "chapters": [
            {
                "chapter_id": chapter_id,
                "title": title,
                "visuals": [{"type": kind, "description": description, "image_prompt": prompt}],
                "narration": {"text": narration},
            }
            for chapter_id, title, kind, description, prompt, narration in CHAPTERS
        ],
    }


def render() -> bytes:
    """The file's bytes: indented UTF-8 JSON with readable Turkish, one trailing newline."""
    return (json.dumps(episode_document(), ensure_ascii=False, indent=2) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("samples/episodes"))
    args = parser.parse_args()
    path = args.root / EPISODE_ID / "chapters.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
