"""Typed reads of one YAML mapping, each failure a one-line SpecError naming file, line, item
and field, with the fix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import SpecError
from .yamlfile import is_null, plain

#: Ids and slugs become file and folder names: letters, digits, ``-``, ``_`` and ``.``.
#: An id or slug that names a file or folder: 100 characters at most, so that with ``.png`` and
#: the ``-NNN`` a second image of the same name gets it stays far inside every file system's
#: 255-byte limit.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def show(value: Any, limit: int = 40) -> str:
    """A value as it may appear in a one-line message (repr escapes newlines)."""
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: Any) -> str:
    if is_null(value):
        return "null"
    if isinstance(value, CommentedMap | dict):
        return "a mapping"
    if isinstance(value, CommentedSeq | list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, date):
        return "a date"
    return "text" if isinstance(value, str) else type(value).__name__


class Fields:
    """Reads the fields of ``node`` (an item of ``file`` called ``where``, e.g.
    ``images[1] 'ch01-osk'``; empty for the top level)."""

    def __init__(self, file: Path, node: CommentedMap, where: str = "") -> None:
        self.file = file
        self.node = node
        self.where = where

    def line(self, field: str | None = None) -> int:
        """1-based line of ``field`` (of the item itself when absent)."""
        try:
            if field is not None and field in self.node:
                return int(self.node.lc.key(field)[0]) + 1
            return int(self.node.lc.line) + 1
        except (AttributeError, KeyError, TypeError):
            return 1

    def error(self, field: str | None, problem: str, fix: str) -> SpecError:
        item = f"{self.where}, " if self.where else ""
        name = f"field {field}: " if field else ""
        message = f"{self.file}:{self.line(field)}: {item}{name}{problem}; {fix}"
        return SpecError(" ".join(message.split("\n")))

    def raw(self, field: str) -> Any:
        return self.node.get(field)

    def text(self, field: str, *, required: bool = False, hint: str = "") -> str | None:
        """A non-empty string, or None when absent/null (SpecError if ``required``)."""
        value = self.node.get(field)
        if is_null(value) or (isinstance(value, str) and not value.strip()):
            if required:
                what = "is missing" if field not in self.node else "is empty"
                raise self.error(field, what, hint or f"add {field}: with a value")
            return None
        if not isinstance(value, str):
            raise self.error(
                field, f"expected text, got {kind_of(value)} {show(value)}", "quote the value"
            )
        return str(value)

    def name(self, field: str, *, what: str) -> str:
        """A required id or slug usable as a file name."""
        value = self.text(field, required=True, hint=f"add {field}: with the {what}")
        assert value is not None
        if not NAME.fullmatch(value):
            raise self.error(
                field,
                f"{value!r} cannot be a file name",
                "use up to 100 letters, digits, '-', '_' and '.', starting with a letter or digit",
            )
        return value

    def texts(self, field: str) -> tuple[str, ...]:
        """A list of non-empty strings (absent, null or ``[]``: empty)."""
        value = self.node.get(field)
        if is_null(value):
            return ()
        if not isinstance(value, CommentedSeq):
            raise self.error(
                field, f"expected a list, got {kind_of(value)} {show(value)}", "write [a, b]"
            )
        out = []
        for i, entry in enumerate(value):
            if not isinstance(entry, str) or not entry.strip():
                raise self.error(
                    field,
                    f"entry {i} is {kind_of(entry)} {show(entry)}",
                    "each entry must be non-empty text",
                )
            out.append(str(entry))
        return tuple(out)

    def mapping(self, field: str, *, required: bool = False) -> CommentedMap | None:
        value = self.node.get(field)
        if is_null(value):
            if required:
                raise self.error(field, "is missing", f"add {field}: as a mapping")
            return None
        if not isinstance(value, CommentedMap):
            raise self.error(
                field, f"expected a mapping, got {kind_of(value)} {show(value)}", "write key: value"
            )
        return value

    def items(self, field: str, *, what: str) -> Iterator[tuple[int, CommentedMap]]:
        """The mappings of a list field (absent or null: none)."""
        value = self.node.get(field)
        if is_null(value):
            return
        if not isinstance(value, CommentedSeq):
            raise self.error(
                field,
                f"expected a list of {what}, got {kind_of(value)}",
                f"write '- ' {what} items",
            )
        for i, entry in enumerate(value):
            if not isinstance(entry, CommentedMap):
                raise self.error(
                    field,
                    f"entry {i} is {kind_of(entry)} {show(entry)}",
                    f"each entry is a {what} mapping",
                )
            yield i, entry

    def described(self, field: str) -> str | None:
        """Text, or a mapping of short fields joined as ``key: value; key: value``."""
        value = self.node.get(field)
        if isinstance(value, CommentedMap):
            parts = []
            for key, entry in value.items():
                if isinstance(entry, CommentedMap | CommentedSeq):
                    raise self.error(
                        field, f"{key} is {kind_of(entry)}", "use text or a mapping of text values"
                    )
                if not is_null(entry):
                    parts.append(f"{key}: {' '.join(str(entry).split())}")
            return "; ".join(parts) or None
        return self.text(field)

    def output_text(self, field: str) -> str | None:
        """An output field the tool writes: text, a timestamp, or null."""
        value = self.node.get(field)
        if is_null(value):
            return None
        if isinstance(value, date):
            return value.isoformat()
        if not isinstance(value, str):
            raise self.error(
                field, f"expected text or null, got {kind_of(value)}", f"set {field}: null"
            )
        return str(value)
