"""The ruamel.yaml round trip of spec files: pinned settings, byte identity, comments kept."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from ruamel.yaml.comments import CommentedMap

from imagegen.sources.specs.edits import append_entry, set_field
from imagegen.sources.specs.errors import SpecError
from imagegen.sources.specs.yamlfile import Style, YamlNull, make_yaml, parse, plain, render

FILE = Path("spec.yaml")

# Files a person might keep by hand; each must come back byte for byte when nothing changes.
UNCHANGED = {
    "comments everywhere": (
        "# head\n\n# second head line\nchapter: dawn   # slug\n"
        "images:\n  # before the first item\n  - custom_id: a   # eol\n"
        "    # between keys\n    prompt_used: x\n\n  # between items\n"
        "  - custom_id: b\n    prompt_used: y\n# tail\n\n# last\n"
    ),
    "odd quoting": (
        'a: \'single\'\nb: "double"\nc: plain\nd: "it\'s"\ne: \'say "hi"\'\n'
        "f: '123'\ng: \"null\"\nh: 'yes'\ni: \"\"\nj: ''\n"
    ),
    "unicode": 'title: "Ynys — “the isle”"\nnote: 日本語のテキスト 🎨\nname: Zoë Ångström\n',
    "flow and block": (
        "palette: [amber, 'slate', \"moss\"]\nstates: {mara: wet, osk: 'dry'}\n"
        "list:\n  - x\n  - {a: 1, b: [2, 3]}\n  - - nested\n    - seq\n"
        "empty_list: []\nempty_map: {}\n"
    ),
    "null spellings": (
        "a: null\nb: ~\nc:\nd: Null\ne: NULL\nlist: [~, null]\nf:   # empty with comment\n"
    ),
    "block scalars": (
        "folded: >\n  one\n  two\n\n  para\nliteral: |\n  line 1\n    indented\n"
        "strip: >-\n  x\nkeep: |+\n  y\n\nnext: 1\n"
    ),
    "indent 4 with offset 0": "images:\n-   custom_id: a\n    prompt_used: x\nmap:\n    key: v\n",
    "indent 2 with dash at key": "images:\n- custom_id: a\n  prompt_used: x\nmap:\n  key: v\n",
    "indent 4 with dash at 2": "images:\n  - custom_id: a\n    prompt_used: x\nmap:\n    k: v\n",
    "document start": "---\n# after start\na: 1\nb:\n  - x\n",
    "anchors": "base: &b {q: 1K}\nother: *b\nmerged:\n  <<: *b\n  r: 2\n",
    "numbers and timestamps": "a: 0x1F\nb: 1.50\nc: 1e3\nd: 0o17\ne: 2026-01-02T10:00:00Z\n",
    # Drift that ruamel would rewrite; the merge keeps the original lines.
    "spaces inside flow": "palette: [ amber , slate ]\nm: { a: 1 }\n",
    "extra spaces after colon": "key:    value\nother:  x\n",
    "plain scalar over two lines": "prompt_used: a long plain prompt that\n  goes on here\nb: 1\n",
    "capital booleans": "a: True\nb: FALSE\n",
    "escapes": 'a: "caf\\u00e9"\nb: "tab\\there"\n',
    "comment above document start": "# above\n---\na: 1\n",
    "trailing spaces": "a: 1   \nb: 2 \n",
    "no final newline": "a: 1\nb: 2",
    "blank lines at end": "a: 1\n\n\n",
    "mixed sequence indents": "a:\n  - x\nb:\n    - y\n",
}


@pytest.mark.parametrize("text", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_a_file_comes_back_byte_for_byte_when_nothing_changes(text: str) -> None:
    rendered = render(parse(text.encode(), FILE))
    assert rendered.data == text.encode()
    assert not rendered.reformatted


@pytest.mark.parametrize(
    ("raw", "style"),
    [
        (b"a:\r\n  - x\r\n  - y\r\nb: ~\r\n", Style(crlf=True)),
        (b"\xef\xbb\xbfa: 1\nb: null\n", Style(bom=True)),
        (b"---\na: 1\n", Style(explicit_start=True)),
    ],
    ids=["crlf", "bom", "explicit start"],
)
def test_line_endings_byte_order_mark_and_document_start_are_kept(raw: bytes, style: Style) -> None:
    doc = parse(raw, FILE)
    assert doc.style == style
    assert render(doc).data == raw
    set_field(doc.data, "a", "new")
    out = render(doc).data
    opening = b"\xef\xbb\xbf" if style.bom else b"---" if style.explicit_start else b"a"
    assert out.startswith(opening)
    assert (b"\r\n" in out) == style.crlf
    assert plain(make_yaml().load(out.decode("utf-8-sig")))["a"] == "new"


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("a:\n  b: 1\nl:\n  - x\n", (2, 4, 2)),
        ("a:\n  b: 1\nl:\n- x\n", (2, 2, 0)),
        ("a:\n    b: 1\nl:\n    - x\n", (4, 6, 4)),
        ("a:\n    b: 1\nl:\n-   k: 1\n    j: 2\n", (4, 4, 0)),
        ("a:\n    b: 1\nl:\n  - k: 1\n    j: 2\n", (4, 4, 2)),
    ],
)
def test_the_files_own_indentation_is_detected(text: str, indent: tuple[int, int, int]) -> None:
    style = parse(text.encode(), FILE).style
    assert (style.mapping, style.sequence, style.offset) == indent


def test_nulls_load_as_yamlnull_and_read_as_none() -> None:
    doc = parse(b"a: null\nb: ~\nc:\n", FILE)
    assert [doc.data[k].text for k in "abc"] == ["null", "~", ""]
    assert all(isinstance(doc.data[k], YamlNull) for k in "abc")
    assert plain(doc.data) == {"a": None, "b": None, "c": None}


def test_new_nulls_are_written_as_null() -> None:
    doc = parse(b"a: 1\n", FILE)
    set_field(doc.data, "b", None)
    assert render(doc).data == b"a: 1\nb: null\n"


def _diff(before: str, after: bytes) -> list[str]:
    lines = difflib.unified_diff(before.splitlines(), after.decode().splitlines(), n=0, lineterm="")
    return [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_setting_scalars_changes_only_their_lines_and_keeps_each_null_spelling() -> None:
    text = (
        "# c\nimages:\n  - custom_id: a\n    file_path: ~   # eol\n    model:\n"
        "    provider: null\n\n  # next\n  - custom_id: b\n    file_path: null\n"
    )
    doc = parse(text.encode(), FILE)
    set_field(doc.data["images"][0], "model", "m1")
    assert _diff(text, render(doc).data) == ["-    model:", "+    model: m1"]


def test_a_scalar_replaced_by_a_block_mapping_keeps_the_comments_that_followed_it() -> None:
    text = (
        "images:\n  - custom_id: a\n    provider_metadata: null   # eol\n\n"
        "  # the second image\n  - custom_id: b\n    provider_metadata: ~\n# tail\n"
    )
    doc = parse(text.encode(), FILE)
    for item in doc.data["images"]:
        meta = CommentedMap()
        meta["request_id"] = "r"
        meta["cost_usd"] = 0.1
        set_field(item, "provider_metadata", meta)
    out = render(doc).data.decode()
    assert out == (
        "images:\n  - custom_id: a\n    provider_metadata:        # eol\n"
        "      request_id: r\n      cost_usd: 0.1\n\n"
        "  # the second image\n  - custom_id: b\n    provider_metadata:\n"
        "      request_id: r\n      cost_usd: 0.1\n# tail\n"
    )


def test_a_block_mapping_replaced_by_a_scalar_keeps_the_comments_after_it() -> None:
    text = "a:\n  x: 1\n  y: 2   # last\n\n# after a\nb: 1\n"
    doc = parse(text.encode(), FILE)
    set_field(doc.data, "a", "flat")
    assert render(doc).data.decode() == "a: flat\n\n# after a\nb: 1\n"


def test_a_missing_key_is_added_last_before_the_comments_that_closed_the_item() -> None:
    text = "images:\n  - custom_id: a\n    prompt_used: x   # eol\n\n  # next\n  - custom_id: b\n"
    doc = parse(text.encode(), FILE)
    set_field(doc.data["images"][0], "file_path", "out.png")
    assert render(doc).data.decode() == (
        "images:\n  - custom_id: a\n    prompt_used: x   # eol\n    file_path: out.png\n\n"
        "  # next\n  - custom_id: b\n"
    )


@pytest.mark.parametrize("empty", ["[]", "~", "null", ""])
def test_appending_to_an_empty_sequence_makes_a_block_list_and_keeps_comments(empty: str) -> None:
    line = f"generated_images: {empty}".rstrip()
    text = f"parts:\n  - slug: a\n    {line}\n\n  # b next\n  - slug: b\n"
    doc = parse(text.encode(), FILE)
    entry = CommentedMap()
    entry["file_path"] = "a.png"
    append_entry(doc.data["parts"][0], "generated_images", entry)
    assert render(doc).data.decode() == (
        "parts:\n  - slug: a\n    generated_images:\n      - file_path: a.png\n\n"
        "  # b next\n  - slug: b\n"
    )


def test_appending_to_a_missing_list_adds_the_key() -> None:
    doc = parse(b"overview:\n  slug: o   # eol\n# end\n", FILE)
    entry = CommentedMap()
    entry["file_path"] = "o.png"
    append_entry(doc.data["overview"], "generated_images", entry)
    assert render(doc).data.decode() == (
        "overview:\n  slug: o   # eol\n  generated_images:\n    - file_path: o.png\n# end\n"
    )


def test_appending_to_a_block_list_keeps_its_entries_and_the_comments_after_it() -> None:
    text = (
        "part:\n  generated_images:\n    - file_path: 1.png   # first\n\n"
        "  # after the list\n  other: 1\n"
    )
    doc = parse(text.encode(), FILE)
    entry = CommentedMap()
    entry["file_path"] = "2.png"
    append_entry(doc.data["part"], "generated_images", entry)
    assert render(doc).data.decode() == (
        "part:\n  generated_images:\n    - file_path: 1.png   # first\n    - file_path: 2.png\n\n"
        "  # after the list\n  other: 1\n"
    )


def test_appending_to_a_flow_list_stays_one_flow_line() -> None:
    doc = parse(b"p:\n  generated_images: [{file_path: 1.png}]\nq: 1\n", FILE)
    entry = CommentedMap()
    entry["file_path"] = "2.png"
    entry["model"] = "m"
    append_entry(doc.data["p"], "generated_images", entry)
    out = render(doc).data.decode()
    # ruamel may drop the braces of a one-pair mapping inside a flow list: same data.
    assert out.count("\n") == 3
    assert out.endswith("q: 1\n")
    assert plain(make_yaml().load(out))["p"]["generated_images"] == [
        {"file_path": "1.png"},
        {"file_path": "2.png", "model": "m"},
    ]


def test_a_changed_line_that_had_drifted_takes_ruamels_layout_alone() -> None:
    text = "a: [ x ]\nfile_name:     null\nmodel:         null\nb: [ z ]\n"
    doc = parse(text.encode(), FILE)
    doc.data["a"].append("y")
    set_field(doc.data, "model", "m")
    rendered = render(doc)
    assert not rendered.reformatted
    assert rendered.data == b"a: [x, y]\nfile_name:     null\nmodel: m\nb: [ z ]\n"


def test_a_reflowed_line_next_to_a_change_falls_back_to_ruamels_layout_and_says_so() -> None:
    text = "note: a plain scalar\n  on two lines\nb: [ z ]\n"
    doc = parse(text.encode(), FILE)
    set_field(doc.data, "note", "short")
    rendered = render(doc)
    assert rendered.reformatted
    assert rendered.data == b"note: short\nb: [z]\n"


def test_drift_elsewhere_is_kept_as_written() -> None:
    text = "palette: [ amber , slate ]\nfile_path: null\nnote: long plain\n  text\n"
    doc = parse(text.encode(), FILE)
    set_field(doc.data, "file_path", "x.png")
    rendered = render(doc)
    assert not rendered.reformatted
    assert _diff(text, rendered.data) == ["-file_path: null", "+file_path: x.png"]


def test_a_file_with_two_list_indents_is_written_in_the_one_its_changed_list_uses() -> None:
    """Two short lists indented ``- x`` and a longer one ``-   x``: the tie goes to the style
    that re-flows fewer lines, so the new fields take the indentation of their own list."""
    text = (
        "palette:\n    - amber\n    - cobalt\nimages:\n    -   custom_id: a\n"
        "        states:\n            mara: wet\n"
        "        file_path:\n        provider_metadata:\n    -   custom_id: b\n"
        "        file_path:\n"
    )
    doc = parse(text.encode(), FILE)
    set_field(doc.data["images"][0], "file_path", "a.png")
    set_field(doc.data["images"][0], "provider_metadata", CommentedMap(request_id="r"))
    rendered = render(doc)
    assert not rendered.reformatted
    assert _diff(text, rendered.data) == [
        "-        file_path:",
        "+        file_path: a.png",
        "+            request_id: r",
    ]


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (b"a: [1, 2\nb: 3\n", ["spec.yaml:", "fix the YAML syntax"]),
        (b"a: 1\na: 2\n", ["spec.yaml:2:", 'duplicate key "a"', "keep one of the two keys"]),
        (b"- just\n- a list\n", ["spec.yaml:", "top level must be a mapping", "got CommentedSeq"]),
        (b"", ["spec.yaml:", "got empty"]),
        (b"# only a comment\n", ["got empty"]),
        (b"a: caf\xe9\n", ["not UTF-8", "save the file as UTF-8"]),
        (b"a:\n\t- tab\n", ["spec.yaml:2:", "fix the YAML syntax"]),
    ],
    ids=["unclosed", "duplicate key", "list at top", "empty", "comment only", "latin-1", "tab"],
)
def test_unreadable_files_raise_one_line_spec_errors(raw: bytes, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse(raw, FILE)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_a_file_holding_nan_can_still_be_updated() -> None:
    doc = parse(b"weight: .nan\nfile_path: null\n", FILE)
    set_field(doc.data, "file_path", "x.png")
    assert render(doc).data == b"weight: .nan\nfile_path: x.png\n"
