"""Wire JSON into domain types: msgspec decodes, and its refusals become 400s naming the field.

A domain type declares its field constraints with msgspec (``Meta``, ``Literal``, strict types)
and its cross-field rules in ``__post_init__``, raising :class:`FieldRule`. :func:`decode` turns
any refusal into :class:`~emban.errors.BadRequest` with the product's words: the message for a
field comes from a :class:`Rules` table keyed by the field's path inside the decoded value
(list indices dropped; a map's keys as ``*``), so ``widgets[2].query.metric`` and
``permissions.locked_filters.plan`` keep the messages clients and tests know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from emban.errors import BadRequest

T = TypeVar("T")
Rule = str | Mapping[str, str]
DecHook = Callable[[type, Any], Any]


# What decoding hostile JSON can raise besides a clean DecodeError: nesting deeper than the
# decoder's recursion limit, bytes that are not UTF-8 (msgspec raises UnicodeDecodeError), and,
# for the standard library's parser, integers over Python's 4,300-digit conversion limit.
# Every JSON reader catches these as one class and answers 400 invalid_json.
UNREADABLE_JSON: tuple[type[BaseException], ...] = (
    msgspec.DecodeError,
    RecursionError,
    UnicodeDecodeError,
)


# What converting client values into a type can raise: a refusal, or, for an integer too large
# for a float, msgspec's OverflowError (surfacing as SystemError from its C code).
CONVERT_FAILURES: tuple[type[BaseException], ...] = (
    msgspec.ValidationError,
    OverflowError,
    SystemError,
)


def malformed_json(exc: BaseException, body: bytes | None = None) -> BadRequest:
    """The 400 for a body the JSON reader refused. Given the ``body``, a number msgspec will not
    read (``1e999``, an integer of hundreds of digits) is a 400 naming the field that holds it."""
    from emban.error_codes import RequestErrorCode

    # msgspec says "Number out of range" or "Integer value out of range".
    if body is not None and "out of range" in str(exc):
        field = out_of_range_field(body)
        if field is not None:
            return BadRequest(f"{field} holds a number out of range", field=field)
    reason = (
        "nested too deeply"
        if isinstance(exc, RecursionError)
        else "not UTF-8"
        if isinstance(exc, UnicodeDecodeError)
        else str(exc).splitlines()[0][:200]
    )
    return BadRequest(f"malformed JSON: {reason}", code=RequestErrorCode.invalid_json)


class _OutOfRange:
    """Marks a number literal msgspec refuses, as the standard parser reads the body again."""


_OUT_OF_RANGE = _OutOfRange()


def _number(text: str) -> object:
    value = float(text)
    return _OUT_OF_RANGE if value in (float("inf"), float("-inf")) else value


def _integer(text: str) -> object:
    # msgspec reads an integer past 64 bits as a float, and refuses one past the float range
    # (~309 digits); the length check keeps int() away from its 4,300-digit limit.
    if len(text.lstrip("-")) > 310:
        return _OUT_OF_RANGE
    value = int(text)
    try:
        float(value)
    except OverflowError:
        return _OUT_OF_RANGE
    return value


def out_of_range_field(body: bytes) -> str | None:
    """The path (``a.b[2].c``) of the first number in ``body`` too large for msgspec, or None
    when the standard parser cannot read the body either (or finds none)."""
    try:
        value = json.loads(body, parse_float=_number, parse_int=_integer)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if node is _OUT_OF_RANGE:
            return path or None
        if isinstance(node, dict):
            children = [(join(path, str(k)), v) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    return None


class FieldRule(ValueError):
    """A rule broken inside a type (``__post_init__`` or a decode hook). ``field`` is relative to
    the value that raised it (``""``: the value itself); the message is the full name of
    ``named`` (default: ``field``) followed by ``rule`` (``" must be …"`` or ``": …"``)."""

    def __init__(self, field: str, rule: str, *, named: str | None = None) -> None:
        super().__init__(f"{field}{rule}")
        self.field = field
        self.rule = rule
        self.named = field if named is None else named


@dataclass(frozen=True)
class Rules:
    """The messages of one wire type's refusals.

    ``messages``: by path (``""`` the value, ``"query.metric"``, ``"locked_filters.*"``; a
    list's items as ``"hidden_widgets[]"``, named by the list), one message or one per reason:
    ``missing`` (absent, null or an empty choice), ``type`` (another type), ``value`` (a
    constraint or choice) and ``default``. ``unknown``: the message of an unknown field, by the
    path of the object holding it. ``maps``: the value type of each map (by path), which msgspec
    does not name the key of when it refuses a value.
    """

    messages: Mapping[str, Rule]
    unknown: Mapping[str, str] = field(default_factory=dict)
    maps: Mapping[str, Any] = field(default_factory=dict)


def join(base: str, name: str) -> str:
    if not name:
        return base
    if not base:
        return name
    return f"{base}{name}" if name.startswith("[") else f"{base}.{name}"


_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_STEP = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")


def decode(
    raw: object,
    kind: Any,
    field: str,
    rules: Rules,
    *,
    dec_hook: DecHook | None = None,
    at: str = "",
) -> Any:
    """``raw`` (JSON values) as ``kind``, or a 400 naming the field. ``field`` names ``raw``;
    ``at`` is ``raw``'s own path in ``rules`` (when it is a part of a bigger value)."""
    try:
        return msgspec.convert(raw, kind, strict=True, dec_hook=dec_hook)
    except (OverflowError, SystemError):
        raise BadRequest(f"{field} holds a number out of range", field=field) from None
    except msgspec.ValidationError as error:
        raise _refusal(error, raw, field, rules, dec_hook, at) from None


def _refusal(
    error: msgspec.ValidationError,
    raw: object,
    field: str,
    rules: Rules,
    dec_hook: DecHook | None,
    at: str,
) -> BadRequest:
    found = _AT.match(str(error))
    message, path = (found["message"], found["path"]) if found else (str(error), "")
    steps = [f"[{m[1]}]" if m[1] else m[2] for m in _STEP.finditer(path)]
    if "[...]" in steps:  # a map's value: find the key, decode that value alone
        index = steps.index("[...]")
        holder = _walk(raw, steps[:index])
        map_at = _key(at, steps[:index])
        value_kind = rules.maps.get(map_at)
        if isinstance(holder, dict) and value_kind is not None:
            for key, value in holder.items():
                try:
                    msgspec.convert(value, value_kind, strict=True, dec_hook=dec_hook)
                except (OverflowError, SystemError):
                    continue
                except msgspec.ValidationError as inner:
                    name = join(_name(field, steps[:index]), str(key))
                    return _refusal(inner, value, name, rules, dec_hook, join(map_at, "*"))
    cause = error.__cause__
    if isinstance(cause, FieldRule):
        base = _name(field, steps)
        return BadRequest(join(base, cause.named) + cause.rule, field=join(base, cause.field))
    reason = "value"
    if missing := _MISSING.match(message):
        steps.append(missing["name"])
        reason = "missing"
    elif unknown := _UNKNOWN.match(message):
        name = join(_name(field, steps), unknown["name"])
        text = rules.unknown.get(_key(at, steps), " is not a known field")
        return BadRequest(name + text, field=name)
    elif message.endswith("got `null`") or message == "Invalid enum value ''":
        reason = "missing"
    elif message.startswith("Expected `") and ", got `" in message:
        reason = "type"
    key = _key(at, steps)
    if steps and steps[-1].startswith("[") and f"{key}[]" in rules.messages:
        key, steps = f"{key}[]", steps[:-1]  # a list's item: named by the list
    rule = rules.messages.get(key, " is not valid")
    text = rule if isinstance(rule, str) else rule.get(reason, rule.get("default", " is invalid"))
    name = _name(field, steps)
    return BadRequest(name + text, field=name)


def _key(at: str, steps: list[str]) -> str:
    """The :class:`Rules` path of ``steps`` below ``at`` (indices dropped)."""
    key = at
    for step in steps:
        if not step.startswith("["):
            key = join(key, step)
    return key


def _name(field: str, steps: list[str]) -> str:
    name = field
    for step in steps:
        name = join(name, step)
    return name


def _walk(raw: object, steps: list[str]) -> object:
    node = raw
    for step in steps:
        if isinstance(node, list) and step.startswith("["):
            node = node[int(step[1:-1])]
        elif isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return node
