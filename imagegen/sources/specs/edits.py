"""Changing a parsed spec without moving its comments.

ruamel.yaml hangs the comment lines that follow a value on that value (or, for a block
collection, on its last line). Replacing a scalar with a block mapping, or a block with a
scalar, or adding a key after the last one, would carry those comments to the wrong place;
these helpers move them so they stay below the same line of text.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken


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
