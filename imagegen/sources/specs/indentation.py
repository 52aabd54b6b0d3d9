"""The indentation a YAML file shows, guessed from its text (pure: text in, numbers out).

ruamel.yaml writes one indentation for a whole file: ``indent(mapping, sequence, offset)``.
:func:`guess_indent` reads it off the text; :mod:`.yamlfile` then confirms the guess by
dumping the unchanged document, using :func:`compare` to tell indentation drift from the
spacing drift no indentation setting can remove.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

#: Indentations tried after the guess, most common first: (mapping, sequence, offset).
CANDIDATES = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 5, 3), (3, 3, 0))


def compare(a: str, b: str) -> tuple[int, bool]:
    """(lines that differ, whether every line that drifted in place kept its indentation)."""
    a_lines, b_lines = a.split("\n"), b.split("\n")
    matcher = SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    drift, agree = 0, True
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        drift += max(i2 - i1, j2 - j1)
        if i2 - i1 != j2 - j1:
            continue  # a scalar re-flowed over fewer or more lines: says nothing of indents
        for old, new in zip(a_lines[i1:i2], b_lines[j1:j2], strict=True):
            if _indent(old) != _indent(new):
                agree = False
    return drift, agree


def _indent(line: str) -> str:
    """Leading spaces and the dashes of sequence entries: ``"  - - "``."""
    return line[: len(line) - len(line.lstrip(" -"))]


_KEY_ONLY = re.compile(r"^(?P<lead>[ -]*)[^\s#-][^#]*?:\s*(#.*)?$")
_BLOCK_SCALAR = re.compile(r":\s*[|>][-+0-9]*\s*(#.*)?$")


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the text shows them; (2, 4, 2) when it shows nothing."""
    return observed_indents(text)[0]


def observed_indents(text: str) -> list[tuple[int, int, int]]:
    """Every (mapping, sequence, offset) the text shows, the most common first.

    A hand-kept file may indent its lists two ways (``- a`` under one key, ``-   a`` under
    another); ruamel writes one way per file, so :mod:`.yamlfile` tries each and keeps the one
    that re-flows fewest lines. Ties go to the style seen first.
    """
    steps: Counter[int] = Counter()
    dashes: Counter[tuple[int, int]] = Counter()
    parent: int | None = None  # column of the last ``key:`` line with nothing after the colon
    scalar_indent: int | None = None  # inside a block scalar started at this key column
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        col = len(line) - len(stripped)
        if scalar_indent is not None:
            if col > scalar_indent:
                continue
            scalar_indent = None
        if parent is not None and col > parent:
            if stripped.startswith("- "):
                content = col + 1 + len(stripped[1:]) - len(stripped[1:].lstrip(" "))
                dashes[(content - parent, col - parent)] += 1
            else:
                steps[col - parent] += 1
        key = _KEY_ONLY.match(line)
        lead = len(key.group("lead")) if key else 0
        parent = lead if key else None
        if _BLOCK_SCALAR.search(line):
            scalar_indent = col + (len(stripped) - len(stripped.lstrip("- ")))
    mapping = steps.most_common(1)[0][0] if steps else 2
    if not dashes:
        return [(mapping, mapping + 2, mapping)]
    return [(mapping, sequence, offset) for (sequence, offset), _ in dashes.most_common()]
