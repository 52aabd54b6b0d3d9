"""The YAML round trip: read a spec file, change a few fields, write back only those lines.

ruamel.yaml 0.19.x in round-trip mode with these settings, pinned by
``tests/test_specs_roundtrip.py`` (providers notes, "YAML round trip (ruamel.yaml 0.19.x)"):

- ``preserve_quotes = True``: ``'a'`` and ``"a"`` stay as written;
- ``width = 4096``: long lines are never re-wrapped;
- the file's own indentation: guessed from the text, then confirmed by dumping the unchanged
  document with each candidate ``indent(mapping, sequence, offset)`` until one gives the text
  back byte for byte or with every line at its own indentation (else the closest one);
- nulls written as they were read (``null``, ``~``, ``Null``, or nothing after the colon),
  through the :class:`YamlNull` constructor/representer pair; nulls we add are ``null``;
- ``explicit_start`` when the document opens with ``---``; a CRLF file is handled as LF and
  written back as CRLF; a UTF-8 byte-order mark is kept.

Some text ruamel cannot give back as written even so (*drift*): spaces inside flow
collections (``[ a ]`` becomes ``[a]``), extra spaces after a colon, a plain scalar folded over
several lines, ``True`` / ``TRUE``, escapes such as ``"\\u00e9"``, comments above ``---``,
trailing spaces, a missing final newline, mixed line endings. :func:`render` therefore merges:
lines that changed between ruamel's dump of the unchanged document and its dump of the changed
one are spliced into the *original* text, and every other line is kept as the file had it. The
result is parsed again and must equal the changed document; if the merge is ambiguous (a
changed line next to one that ruamel re-flowed over more or fewer lines) or does not read back
equal, ruamel's own dump is written and :attr:`Rendered.reformatted` says so.

Cost: two ruamel loads and two or more dumps per update, tens of milliseconds for a few-KB
spec (ruamel's round-trip mode is pure Python).

Changing the tree without moving comments is :mod:`.edits`; guessing the indentation is
:mod:`.indentation`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarbool import ScalarBoolean

from .errors import SpecError
from .indentation import CANDIDATES, compare, observed_indents

NULL_TAG = "tag:yaml.org,2002:null"
BOM = b"\xef\xbb\xbf"


class YamlNull:
    """A null as it was written: ``text`` is ``"null"``, ``"~"``, ``"Null"``, ``""``..."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"YamlNull({self.text!r})"

    def __bool__(self) -> bool:
        return False


class _Constructor(RoundTripConstructor):
    def construct_yaml_null(self, node: Any) -> Any:
        self.construct_scalar(node)
        return YamlNull(node.value)


class _Representer(RoundTripRepresenter):
    def represent_none(self, data: Any) -> ScalarNode:
        # ruamel's round-trip default writes a bare ``key:``; new nulls say ``null``.
        return self.represent_scalar(NULL_TAG, "null")

    def represent_yaml_null(self, data: YamlNull) -> ScalarNode:
        return self.represent_scalar(NULL_TAG, data.text)

    def ignore_aliases(self, data: Any) -> bool:
        return isinstance(data, YamlNull) or bool(super().ignore_aliases(data))


# add_* copy the parent's table on first use: ruamel's own RoundTrip classes stay untouched.
_Constructor.add_constructor(NULL_TAG, _Constructor.construct_yaml_null)
_Representer.add_representer(type(None), _Representer.represent_none)
_Representer.add_representer(YamlNull, _Representer.represent_yaml_null)


@dataclass(frozen=True, slots=True)
class Style:
    """How a file is written: indentation (spaces) and the bytes around the text."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    explicit_start: bool = False
    crlf: bool = False
    bom: bool = False


def make_yaml(style: Style = Style()) -> YAML:
    """A round-trip ``YAML`` with the pinned settings and ``style``'s indentation."""
    yaml = YAML()  # typ="rt"
    yaml.Constructor = _Constructor
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.explicit_start = style.explicit_start or None
    return yaml


@dataclass(slots=True, eq=False)
class Document:
    """One parsed file. ``data`` is the mutable ruamel tree; ``text`` the file as read (LF, no
    byte-order mark); ``base`` ruamel's dump of the unchanged tree in ``style``."""

    file: Path
    text: str
    data: CommentedMap
    style: Style
    base: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """The bytes to write, and whether lines other than the changed ones were re-formatted."""

    data: bytes
    reformatted: bool


def read_document(file: Path) -> Document:
    """Read and parse ``file`` for an update; raises SpecError (syntax, encoding, not a
    mapping) or OSError."""
    return parse(file.read_bytes(), file)


def read_mapping(file: Path) -> CommentedMap:
    """Read and parse ``file`` only to look at it (no style detection: cheaper)."""
    return _decode(file.read_bytes(), file)[0]


def parse(raw: bytes, file: Path) -> Document:
    """Parse a spec file's bytes. Raises SpecError naming ``file`` and the line."""
    data, text, crlf, bom = _decode(raw, file)
    style, base = _detect_style(data, text, crlf=crlf, bom=bom)
    return Document(file, text, data, style, base)


def _decode(raw: bytes, file: Path) -> tuple[CommentedMap, str, bool, bool]:
    bom = raw.startswith(BOM)
    try:
        text = raw[len(BOM) if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{file}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from exc
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    data = _load(make_yaml(), text, file)
    if not isinstance(data, CommentedMap):
        kind = "empty" if data is None or isinstance(data, YamlNull) else type(data).__name__
        raise SpecError(
            f"{file}: the top level must be a mapping of 'key: value' lines, got {kind}; "
            "see samples/specs/README.md for the layout"
        )
    return data, text, crlf, bom


def render(doc: Document) -> Rendered:
    """The bytes of ``doc`` after its tree was changed (module docstring: the merge).

    Raises SpecError if not even ruamel's own dump reads back equal to the tree (the file is
    then left as it is).
    """
    new = dump(doc.data, doc.style)
    expected = plain(doc.data)
    text, reformatted = new, doc.base != doc.text
    if reformatted:
        merged = _merge(doc.text.split("\n"), doc.base.split("\n"), new.split("\n"))
        if merged is not None:
            candidate = "\n".join(merged)
            if _reads_as(candidate, expected):
                text, reformatted = candidate, False
    if text is new and not _reads_as(new, expected):
        raise SpecError(
            f"{doc.file}: the updated YAML would not read back as written; the file is left "
            "unchanged: report this with the file attached"
        )
    if doc.style.crlf:
        text = text.replace("\n", "\r\n")
    return Rendered((BOM if doc.style.bom else b"") + text.encode("utf-8"), reformatted)


def dump(data: Any, style: Style) -> str:
    """ruamel's dump of ``data`` in ``style`` (LF line ends, no byte-order mark)."""
    out = io.StringIO()
    make_yaml(style).dump(data, out)
    return out.getvalue()


def plain(value: Any) -> Any:
    """``value`` as builtins: dict, list, str, int, float, bool, date/datetime, None."""
    if isinstance(value, YamlNull) or value is None:
        return None
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, date):
        return value
    return value


def is_null(value: Any) -> bool:
    """Whether ``value`` is a YAML null (however it was written)."""
    return value is None or isinstance(value, YamlNull)


def _load(yaml: YAML, text: str, file: Path) -> Any:
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        what = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "duplicate key" in what:
            what = what.split(" with value")[0]
            fix = "keep one of the two keys"
        else:
            fix = "fix the YAML syntax there"
        raise SpecError(f"{where}: {what}; {fix}") from exc
    except YAMLError as exc:
        raise SpecError(f"{file}: invalid YAML ({' '.join(str(exc).split())})") from exc


def _reads_as(text: str, expected: Any) -> bool:
    try:
        return _same(plain(make_yaml().load(text)), expected)
    except YAMLError:
        return False


def _same(a: Any, b: Any) -> bool:
    """Equality of plain values in which NaN equals NaN (``.nan`` is valid YAML)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def _detect_style(data: CommentedMap, text: str, *, crlf: bool, bom: bool) -> tuple[Style, str]:
    start = _opens_with_document_start(text)
    best: tuple[int, Style, str] | None = None
    for mapping, sequence, offset in dict.fromkeys((*observed_indents(text), *CANDIDATES)):
        style = Style(mapping, sequence, offset, start, crlf, bom)
        out = dump(data, style)
        drift, indents_agree = compare(text, out)
        if not drift or indents_agree:
            # The drift left is not indentation (spacing, quoting of reflowed scalars): no
            # other candidate can do better, and each costs a dump.
            return style, out
        if best is None or drift < best[0]:
            best = (drift, style, out)
    assert best is not None
    return best[1], best[2]


def _opens_with_document_start(text: str) -> bool:
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")):
            return stripped == "---" or stripped.startswith("--- ")
    return False


def _merge(orig: list[str], base: list[str], new: list[str]) -> list[str] | None:
    """``orig`` with the edits that turn ``base`` into ``new``; None when an edit touches lines
    that ruamel re-flowed (one line became two, or the reverse): the merge would be a guess.
    :func:`render` checks that the result reads back as the changed document."""
    b2a: dict[int, int] = {}
    for tag, a1, a2, b1, b2 in SequenceMatcher(None, orig, base, autojunk=False).get_opcodes():
        # Equal lines map one to one; so do lines that only drifted (as many on each side:
        # ``key:   null`` against ``key: null``), so a changed field may itself have drifted.
        if tag == "equal" or (tag == "replace" and a2 - a1 == b2 - b1):
            for n in range(b2 - b1):
                b2a[b1 + n] = a1 + n
    edits: list[tuple[int, int, list[str]]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, base, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 < i2:
            if any(i not in b2a for i in range(i1, i2)):
                return None
            start, stop = b2a[i1], b2a[i2 - 1] + 1
            if stop - start != i2 - i1:
                return None
        else:
            after = b2a[i1 - 1] + 1 if i1 > 0 and i1 - 1 in b2a else None
            before = b2a[i1] if i1 < len(base) and i1 in b2a else None
            if after is None and before is None:
                return None
            if after is not None and before is not None and after != before:
                return None
            start = stop = after if after is not None else before  # type: ignore[assignment]
        edits.append((start, stop, new[j1:j2]))
    out = list(orig)
    for start, stop, lines in reversed(edits):
        out[start:stop] = lines
    return out
