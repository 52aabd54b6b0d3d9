"""The YAML round trip: read a spec file, change a few fields, write back only those lines.

ruamel.yaml 0.19.x in round-trip mode with these settings, pinned by
``tests/test_specs_roundtrip.py`` (providers notes, "YAML round trip (ruamel.yaml 0.19.x)"):

- ``preserve_quotes = True``: ``'a'`` and ``"a"`` stay as written;
- ``width = 4096``: long lines are never re-wrapped;
- the file's own indentation: guessed from the text, then confirmed by dumping the unchanged
  document with each candidate ``indent(mapping, sequence, offset)`` until one gives the text
  back byte for byte (the closest one when none does);
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
result is parsed again and must equal the changed document; if the merge is ambiguous (drift
touching a changed line) or does not read back equal, ruamel's own dump is written and
:attr:`Rendered.reformatted` says so.

Comments around a replaced value stay put (:func:`set_field`, :func:`append_entry`): ruamel
hangs the comment lines that follow a value on that value, so replacing a scalar with a block
collection (or the reverse) would move them; the helpers move them to the new last line.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.tokens import CommentToken

from .errors import SpecError

NULL_TAG = "tag:yaml.org,2002:null"
BOM = b"\xef\xbb\xbf"

# Indentations tried after the guess, most common first: (mapping, sequence, offset).
CANDIDATES = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 5, 3), (3, 3, 0))


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


# --- editing the tree without moving comments -------------------------------------------------


def set_field(mapping: CommentedMap, key: str, value: Any) -> None:
    """``mapping[key] = value``, keeping the comments after the old value below the new one.

    A missing key is added at the end of ``mapping``; the comment lines that followed the old
    last value then follow the new one.
    """
    if key in mapping:
        eol, after = _take_comments(mapping, key)
    else:
        eol, after = None, _take_tail(mapping, keep_eol=True) if len(mapping) else ""
    mapping[key] = value
    _put_comments(mapping, key, eol, after)


def append_entry(mapping: CommentedMap, key: str, entry: CommentedMap) -> None:
    """Append ``entry`` to the sequence at ``mapping[key]`` (made a block sequence when it is
    missing, null or an empty ``[]``), keeping comments in place."""
    seq = mapping.get(key)
    if isinstance(seq, CommentedSeq) and len(seq):
        after = _take_tail(seq, keep_eol=True)
        if seq.fa.flow_style():
            entry.fa.set_flow_style()
        seq.append(entry)
        if after:
            _set_post(entry, list(entry)[-1], None, after)
        return
    new = CommentedSeq()
    new.fa.set_block_style()
    new.append(entry)
    set_field(mapping, key, new)


def flow_map(values: Mapping[str, Any]) -> CommentedMap:
    """A mapping written on one line, ``{a: 1, b: null}``."""
    out = CommentedMap(values)
    out.fa.set_flow_style()
    return out


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, CommentedMap | CommentedSeq)
        and len(value) > 0
        and value.fa.flow_style() is not True
    )


def _take_comments(mapping: CommentedMap, key: Any) -> tuple[CommentToken | None, str]:
    """Remove and return the comment on ``key``'s line and the comment lines after its value."""
    slot = mapping.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 else None
    value = mapping[key]
    if _is_block(value):
        eol = token if token is not None and token.value.startswith("#") else None
        if slot:
            slot[2] = None
        return eol, _take_tail(value, keep_eol=False)
    if token is None:
        return None, ""
    assert slot is not None
    slot[2] = None
    text = token.value
    if text.startswith("#"):
        line, _, rest = text.partition("\n")
        return CommentToken(line + "\n", CommentMark(token.column)), rest
    return None, text[1:] if text.startswith("\n") else text


def _put_comments(mapping: CommentedMap, key: Any, eol: CommentToken | None, after: str) -> None:
    value = mapping[key]
    if _is_block(value):
        if eol is not None:
            _slot(mapping.ca.items, key)[2] = eol
            value.ca.comment = [eol, None]
        if after:
            _put_tail(value, after)
    else:
        _set_post(mapping, key, eol, after)


def _set_post(mapping: CommentedMap, key: Any, eol: CommentToken | None, after: str) -> None:
    if eol is None and not after:
        return
    text = (eol.value if eol is not None else "\n") + after
    column = eol.column if eol is not None else 0
    _slot(mapping.ca.items, key)[2] = CommentToken(text, CommentMark(column))


def _take_tail(node: CommentedMap | CommentedSeq, *, keep_eol: bool) -> str:
    """Remove and return the comment lines that follow the last line of a block collection.

    With ``keep_eol`` the last line stays, so its own end-of-line comment stays with it.
    """
    last: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
    value = node[last]
    if _is_block(value):
        return _take_tail(value, keep_eol=keep_eol)
    # A flow collection as the last value keeps the comments after it in ``ca.end``.
    ends = node.ca.end or []
    tail = "".join(" " * (t.column if t.value.startswith("#") else 0) + t.value for t in ends)
    node.ca.end = []
    index = 0 if isinstance(node, CommentedSeq) else 2
    slot = node.ca.items.get(last)
    token = slot[index] if slot and len(slot) > index else None
    if token is None:
        return tail
    slot[index] = None
    text: str = token.value
    if text.startswith("#"):
        line, _, text = text.partition("\n")
        if keep_eol:
            slot[index] = CommentToken(line + "\n", CommentMark(token.column))
    elif text.startswith("\n"):
        text = text[1:]
    return text + tail


def _put_tail(node: CommentedMap | CommentedSeq, after: str) -> None:
    last: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
    value = node[last]
    if _is_block(value):
        _put_tail(value, after)
    elif isinstance(node, CommentedMap):
        _set_post(node, last, None, after)
    else:
        _slot(node.ca.items, last, size=2)[0] = CommentToken("\n" + after, CommentMark(0))


def _slot(items: dict[Any, Any], key: Any, size: int = 4) -> list[Any]:
    slot = items.get(key)
    if slot is None:
        slot = items[key] = [None] * size
    assert isinstance(slot, list)
    return slot


# --- parsing, style detection, merging --------------------------------------------------------


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
    for mapping, sequence, offset in dict.fromkeys((_guess_indent(text), *CANDIDATES)):
        style = Style(mapping, sequence, offset, start, crlf, bom)
        out = dump(data, style)
        drift, indents_agree = _compare(text, out)
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


def _compare(a: str, b: str) -> tuple[int, bool]:
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


def _guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as the text shows them; (2, 4, 2) when it shows nothing."""
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
    if dashes:
        (sequence, offset), _ = dashes.most_common(1)[0]
    else:
        sequence, offset = mapping + 2, mapping
    return mapping, sequence, offset


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


def restyle(doc: Document, **changes: Any) -> Document:
    """``doc`` with other style settings (tests pin the detection with this)."""
    style = replace(doc.style, **changes)
    return Document(doc.file, doc.text, doc.data, style, dump(doc.data, style))
