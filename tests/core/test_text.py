"""core.text: what the database cannot store and a response cannot encode, found anywhere in a JSON document."""

import pytest

from core.text import echo, echo_json, json_text_problem, text_problem


@pytest.mark.parametrize(
    ("value", "controls", "code", "phrase"),
    [
        ("a\x00b", False, "null_characters_not_allowed", "contains the NUL character"),
        ("a\ud800", False, "surrogate_characters_not_allowed", "contains an unpaired surrogate (invalid Unicode)"),
        ("a\tb", True, "control_characters_not_allowed", "contains the control character U+0009"),
        ("a\x9fb", True, "control_characters_not_allowed", "contains the control character U+009F"),
    ],
)
def test_text_problem_names_what_is_wrong(value, controls, code, phrase):
    problem = text_problem(value, controls=controls)
    assert (problem.code, problem.phrase) == (code, phrase)


@pytest.mark.parametrize("value", ["org/1", "a b", "Zürich 株式会社 😀", "a\tb", ""])
def test_printable_text_and_plain_controls_pass_when_controls_are_allowed(value):
    assert text_problem(value) is None


def test_json_text_problem_finds_keys_values_and_depth():
    assert json_text_problem({"a": [{"b": "ok"}, {"c": "x\x00"}]})[0] == "a[1].c"
    path, problem = json_text_problem({"a": {"\ud800": 1}})
    assert (path, problem.code, problem.phrase) == (
        "a.\ufffd",
        "surrogate_characters_not_allowed",
        "is a key that contains an unpaired surrogate (invalid Unicode)",
    )
    nested: list = []
    deep = nested
    for _ in range(70):
        deep.append([])
        deep = deep[0]
    path, problem = json_text_problem({"attributes": nested})
    assert (path, problem.code) == ("attributes", "too_deep")
    assert json_text_problem({"a": [1, 2.5, None, True, {"b": "fine"}]}) is None


def test_echo_is_always_encodable():
    assert echo("a\ud800b\x00c", limit=4) == "a\ufffdb\u2400"
    assert echo_json({"\udc80": ["x\ud800", 1, None]}) == {"\ufffd": ["x\ufffd", 1, None]}
    echo_json({"\udc80": ["x\ud800"]})["\ufffd"][0].encode("utf-8")
