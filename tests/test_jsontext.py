"""The one parser of remote JSON: bounded depth, no lone surrogates, no NaN; never a crash."""

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matpi.remote.jsontext import MAX_DEPTH, JsonError, load_json


@pytest.mark.parametrize("text", [
    "[" * 1000, "[" * 3000 + "]" * 3000, '{"a":' * 500 + "1" + "}" * 500,
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
])
def test_deep_nesting_is_refused_before_the_parser_recurses(text: str) -> None:
    with pytest.raises(JsonError, match="nested deeper than"):
        load_json(text)


def test_nesting_up_to_the_bound_is_read() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(text) == json.loads(text)


def test_brackets_inside_strings_do_not_count() -> None:
    assert load_json('{"program": "[[[[[[[[[[[[", "x": "\\"[[[[[[[[[["}') == {
        "program": "[[[[[[[[[[[[", "x": '"[[[[[[[[[['}


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udfff": 1}', '["ok", "\\udc00x"]',
                                  '{"program": "back\\ud83d"}'])
def test_a_lone_surrogate_is_refused(text: str) -> None:
    with pytest.raises(JsonError, match="lone surrogate"):
        load_json(text)


@pytest.mark.parametrize(("text", "path"), [
    ('"\\ud800"', ""),
    ('{"program": "back\\ud83d"}', "program"),
    ('{"\\udfff": 1}', "\\udfff"),  # the key itself, escaped: UTF-8 can carry it
    ('{"ok": "x", "\\udfff": 1}', "\\udfff"),
    ('["ok", "\\udc00x"]', "[1]"),
    ('{"value": {"program": ["back", "x\\udc00"]}}', "value.program[1]"),
    ('{"value": [{"a": 1}, {"b\\ud800": "c"}]}', "value[1].b\\ud800"),
])
def test_a_lone_surrogate_names_where_it_is(text: str, path: str) -> None:
    """Review: a surrogate in a key was reported as the whole body, not the key."""
    with pytest.raises(JsonError, match="lone surrogate") as caught:
        load_json(text)
    assert caught.value.path == path


@pytest.mark.parametrize("text", ["[" * 1000, "not json", b"\xff"])
def test_other_errors_blame_the_whole_value(text: str | bytes) -> None:
    with pytest.raises(JsonError) as caught:
        load_json(text)
    assert caught.value.path == ""


def test_a_surrogate_pair_is_a_character_and_is_read() -> None:
    assert load_json('"\\ud83d\\ude00"') == "\U0001F600"


@pytest.mark.parametrize("text", ["", "{", "not json", b"\xff\xfe", "[1,]"])
def test_what_is_not_json_says_so(text: str | bytes) -> None:
    with pytest.raises(JsonError):
        load_json(text)


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_no_text_raises_anything_but_a_json_error(text: str | bytes) -> None:
    with contextlib.suppress(JsonError):
        load_json(text)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=20))
def test_plain_json_reads_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value)
    try:
        parsed = load_json(text)
    except JsonError as exc:  # only what the bounds refuse
        assert "nested deeper" in str(exc) or "lone surrogate" in str(exc)
        return
    assert parsed == json.loads(text)
