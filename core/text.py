"""Text that the database can store and a response can encode.

PostgreSQL refuses NUL in text and jsonb, and a lone surrogate (`"\\ud800"` is valid JSON) cannot be encoded as
UTF-8, so either one reaching a query or a response is a 500. Inputs are checked at the edges with
`text_problem` / `json_text_problem` (the DRF JSON parser, the events validator, the request middleware), and
whatever is echoed back to a client goes through `echo`, which cannot fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# C0 controls, DEL and C1 controls: never part of an id, a key or a name a person typed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# Deeper JSON than this is refused before it reaches a serializer or PostgreSQL's jsonb parser.
JSON_MAX_DEPTH = 64


@dataclass(frozen=True)
class TextProblem:
    """Why a text is refused: a stable `code` (DRF's own codes for NUL and surrogates) and a phrase that
    completes "'<field>' ...": "contains the NUL character"."""

    code: str
    phrase: str


NUL = TextProblem("null_characters_not_allowed", "contains the NUL character")
SURROGATE = TextProblem("surrogate_characters_not_allowed", "contains an unpaired surrogate (invalid Unicode)")


def text_problem(value: str, *, controls: bool = False) -> TextProblem | None:
    """What makes `value` unstorable (NUL, a lone surrogate) or, with `controls`, not printable text (any
    control character); None when nothing does."""
    if "\x00" in value:
        return NUL
    if _SURROGATE.search(value):
        return SURROGATE
    if controls and (match := _CONTROL.search(value)):
        return TextProblem("control_characters_not_allowed", f"contains the control character U+{ord(match[0]):04X}")
    return None


def json_text_problem(value: Any, *, max_depth: int = JSON_MAX_DEPTH) -> tuple[str, TextProblem] | None:
    """A string (key or value) in a decoded JSON document that `text_problem` refuses, or a place nested
    deeper than `max_depth`, as (path, problem) with paths like `attributes.note` or `levels[1].name`; None
    when there is none. Iterative, so any depth json.loads could build is walked safely."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            if problem := text_problem(node):
                return path or "body", problem
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                # Named by its top-level field: the full path would be `max_depth` steps long.
                top = re.split(r"[.\[]", path, maxsplit=1)[0] if path else ""
                return top or "body", TextProblem("too_deep", f"nests JSON deeper than {max_depth} levels")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                if isinstance(key, str):
                    child_path = f"{path}.{key}" if path else key
                    if problem := text_problem(key):
                        return echo(child_path), TextProblem(problem.code, f"is a key that {problem.phrase}")
                else:
                    child_path = f"{path}[{key}]"
                stack.append((child, child_path, depth + 1))
    return None


def echo(value: object, *, limit: int | None = None) -> str:
    """`value` as text that is always safe to put in a response: a lone surrogate becomes U+FFFD and NUL
    becomes U+2400 (␀); cut to `limit` characters when given."""
    text = str(value)
    if limit is not None:
        text = text[:limit]
    return _SURROGATE.sub("\ufffd", text).replace("\x00", "\u2400")


def echo_json(value: Any) -> Any:
    """A JSON-ready value with every string (keys included) passed through `echo`."""
    if isinstance(value, str):
        return echo(value)
    if isinstance(value, dict):
        return {echo_json(k): echo_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [echo_json(v) for v in value]
    return value


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice. json.loads keeps the last value without a word; the first is
    what another reader (a proxy, a log pipeline, the client's own tests) may have seen, so it is refused."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key '{echo(key, limit=64)}' appears twice in one object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return obj


def _not_finite(literal: str) -> float:
    raise ValueError(f"Out of range float values are not JSON compliant: {literal!r}")


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)
_FINITE_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_not_finite)


def json_loads(text: str, *, finite: bool = False) -> Any:
    """json.loads of a str, refusing an object that names a key twice (DuplicateKeyError, a ValueError) and,
    with `finite`, the NaN/Infinity literals. Every body the API parses goes through it."""
    return (_FINITE_DECODER if finite else _DECODER).decode(text)


def json_raw_decode(text: str, index: int) -> tuple[Any, int]:
    """JSONDecoder.raw_decode with json_loads' rule on duplicate keys: one value starting at `index`."""
    return _DECODER.raw_decode(text, index)
