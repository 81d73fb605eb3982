"""Test cases in YAML, run through the emulator (``wasmetool test``); format: docs/testing.md.

    filter: ./filter.wasm          # or a store ref; omitted in a project: the project's build
    root_id: hello_root
    configuration: world           # a string, or a mapping/list (sent as JSON)
    cases:
      - name: adds the hello header
        request: {method: GET, path: /greet, headers: {x-user: ann}}
        response: {status: 200, body: ok}          # what the upstream answers
        expect:
          status: 200
          headers: {hello: world, x-debug: {absent: true}}
          logs: {info: [{regex: "GET /greet"}]}

Loading checks the whole file first and reports the first problem as
``FILE:LINE: where: what is wrong``. Each case runs on a fresh VM (isolated logs,
metrics and shared data) with a virtual clock.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wasmetool.errors import WasmetoolError
from wasmetool.host import abi

FORMAT_HINT = "fix the test file (format: docs/testing.md)"


# ----------------------------------------------------------------------------- loading
class _Map(dict):  # type: ignore[type-arg]
    line = 0
    key_lines: dict[str, int]


class _List(list):  # type: ignore[type-arg]
    line = 0
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader with line numbers, and YAML 1.2 booleans: only true/false are booleans,
    so a header value ``yes`` or ``off`` stays the text it is."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                              re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise CaseFileError(loader.name, key_node.start_mark.line + 1, "mapping key",
                                "keys must be plain strings")
        key = str(key)
        if key in out:
            raise CaseFileError(loader.name, key_node.start_mark.line + 1, key,
                                "this key appears twice in the same mapping")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = value_node.start_mark.line + 1
    return out


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


class CaseFileError(WasmetoolError):
    """A malformed test file: which file, which line, what is wrong."""

    def __init__(self, path: str, line: int, where: str, what: str) -> None:
        self.path, self.line_number, self.where = path, line, where
        super().__init__(f"{path}:{line}: {where}: {what}", FORMAT_HINT)


@dataclass
class HeaderCheck:
    name: str
    equals: list[str] | None = None      # every value, in order
    regex: str | None = None
    contains: str | None = None
    present: bool | None = None


@dataclass
class TextCheck:
    equals: str | None = None
    contains: str | None = None
    regex: str | None = None


@dataclass
class CallAnswer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False
    timeout: bool = False
    expect: dict[str, Any] = field(default_factory=dict)   # cluster/method/path/headers/body
    line: int = 0


@dataclass
class GrpcAnswer:
    message: bytes = b""
    status: int = 0
    status_message: str = ""
    initial_metadata: list[tuple[str, str]] = field(default_factory=list)
    trailing_metadata: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False
    timeout: bool = False
    expect: dict[str, Any] = field(default_factory=dict)  # cluster/service/method/metadata/message
    line: int = 0


@dataclass
class Expect:
    status: int | None = None
    headers: list[HeaderCheck] = field(default_factory=list)
    body: TextCheck | None = None
    trailers: list[HeaderCheck] = field(default_factory=list)
    local_reply: bool | None = None
    upstream_reached: bool | None = None
    upstream_headers: list[HeaderCheck] = field(default_factory=list)
    upstream_body: TextCheck | None = None
    logs: dict[int, list[TextCheck]] = field(default_factory=dict)
    no_logs: dict[int, list[TextCheck]] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    http_calls: int | None = None
    grpc_calls: int | None = None
    paused: bool | None = None


@dataclass
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    trailers: list[tuple[str, str]] | None = None


@dataclass
class Case:
    name: str
    file: str
    line: int
    settings: dict[str, Any]
    request: Message
    response: Message
    http_calls: list[CallAnswer]
    grpc_calls: list[GrpcAnswer]
    advance_before: float
    advance: float
    expect: Expect


@dataclass
class CaseFile:
    path: Path
    filter: str | None
    settings: dict[str, Any]
    cases: list[Case]


FILE_KEYS = {"filter", "root_id", "vm_id", "configuration", "vm_configuration", "environment",
             "fail_open", "clusters", "strict", "properties", "cases", "name"}
CASE_KEYS = {"name", "request", "response", "http_calls", "grpc_calls", "advance_before",
             "advance",
             "expect", "configuration", "vm_configuration", "environment", "strict",
             "fail_open", "properties"}
EXPECT_KEYS = {"status", "headers", "body", "trailers", "local_reply", "upstream", "logs",
               "no_logs", "metrics", "http_calls", "grpc_calls", "paused"}
SETTINGS = ("root_id", "vm_id", "configuration", "vm_configuration", "environment",
            "fail_open", "clusters", "strict", "properties")


class _Ctx:
    """Where we are in the file, for error messages."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int, where: str, what: str) -> CaseFileError:
        return CaseFileError(self.path, line, where, what)

    def mapping(self, value: Any, line: int, where: str, keys: set[str]) -> _Map:
        if not isinstance(value, _Map):
            raise self.fail(line, where, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in keys:
                raise self.fail(value.key_lines[key], f"{where}.{key}",
                                f"unknown key (known: {', '.join(sorted(keys))})")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def _line(m: _Map, key: str) -> int:
    return m.key_lines.get(key, m.line)


def _string(ctx: _Ctx, value: Any, line: int, where: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ctx.fail(line, where, f"expected a string, got {_kind(value)}")
    return str(value)


def _number(ctx: _Ctx, value: Any, line: int, where: str, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or (integer and not isinstance(value, int)):
        raise ctx.fail(line, where, f"expected {'an integer' if integer else 'a number'}, "
                                    f"got {_kind(value)}")
    if value < 0:
        raise ctx.fail(line, where, "must not be negative")
    return value


def _bool(ctx: _Ctx, value: Any, line: int, where: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(line, where, f"expected true or false, got {_kind(value)}")
    return value


def _header_list(ctx: _Ctx, value: Any, line: int, where: str) -> list[tuple[str, str]]:
    """A mapping name -> value (or list of values), or a list of [name, value] pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(value, _Map):
        for k, v in value.items():
            values = v if isinstance(v, list) else [v]
            for item in values:
                out.append((k.lower(), _string(ctx, item, _line(value, k), f"{where}.{k}")))
        return out
    if isinstance(value, _List):
        for i, item in enumerate(value):
            if not (isinstance(item, list) and len(item) == 2):
                raise ctx.fail(value.item_lines[i], f"{where}[{i}]",
                               "expected a [name, value] pair")
            out.append((_string(ctx, item[0], value.item_lines[i], where).lower(),
                        _string(ctx, item[1], value.item_lines[i], where)))
        return out
    raise ctx.fail(line, where, f"expected a mapping of headers, got {_kind(value)}")


def _config_value(ctx: _Ctx, value: Any, line: int, where: str) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ctx.fail(line, where, "expected a string or a mapping (sent as JSON)")
    return str(value)


def _settings(ctx: _Ctx, m: _Map, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SETTINGS:
        if key not in m:
            continue
        v, line = m[key], _line(m, key)
        w = f"{where}.{key}" if where else key
        if key in ("configuration", "vm_configuration"):
            out[key] = _config_value(ctx, v, line, w)
        elif key in ("fail_open", "strict"):
            out[key] = _bool(ctx, v, line, w)
        elif key in ("environment", "properties"):
            if not isinstance(v, _Map):
                raise ctx.fail(line, w, f"expected a mapping KEY: value, got {_kind(v)}")
            out[key] = {k: _string(ctx, x, _line(v, k), f"{w}.{k}") for k, x in v.items()}
        elif key == "clusters":
            if not isinstance(v, _List):
                raise ctx.fail(line, w, f"expected a list of cluster names, got {_kind(v)}")
            out[key] = [_string(ctx, x, v.item_lines[i], f"{w}[{i}]") for i, x in enumerate(v)]
        else:
            out[key] = _string(ctx, v, line, w)
    return out


def _text_check(ctx: _Ctx, value: Any, line: int, where: str) -> TextCheck:
    if isinstance(value, _Map):
        ctx.mapping(value, line, where, {"equals", "contains", "regex"})
        if len(value) != 1:
            raise ctx.fail(line, where, "give one of equals, contains, regex")
        key, v = next(iter(value.items()))
        text = _string(ctx, v, _line(value, key), f"{where}.{key}")
        if key == "regex":
            _compile(ctx, text, _line(value, key), f"{where}.regex")
        return TextCheck(**{key: text})
    return TextCheck(equals=_string(ctx, value, line, where))


def _compile(ctx: _Ctx, pattern: str, line: int, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ctx.fail(line, where, f"not a valid regular expression ({exc})") from None


def _header_checks(ctx: _Ctx, value: Any, line: int, where: str) -> list[HeaderCheck]:
    if not isinstance(value, _Map):
        raise ctx.fail(line, where, f"expected a mapping of header name -> expectation, "
                                    f"got {_kind(value)}")
    out = []
    for name, v in value.items():
        w, ln = f"{where}.{name}", _line(value, name)
        check = HeaderCheck(name.lower())
        if isinstance(v, _Map):
            ctx.mapping(v, ln, w, {"equals", "regex", "contains", "present", "absent"})
            if len(v) != 1:
                raise ctx.fail(ln, w, "give one of equals, regex, contains, present, absent")
            key, x = next(iter(v.items()))
            kl = _line(v, key)
            if key == "equals":
                check.equals = [_string(ctx, y, kl, f"{w}.equals") for y in
                                (x if isinstance(x, list) else [x])]
            elif key == "regex":
                check.regex = _string(ctx, x, kl, f"{w}.regex")
                _compile(ctx, check.regex, kl, f"{w}.regex")
            elif key == "contains":
                check.contains = _string(ctx, x, kl, f"{w}.contains")
            elif key == "present":
                check.present = _bool(ctx, x, kl, f"{w}.present")
            else:
                check.present = not _bool(ctx, x, kl, f"{w}.absent")
        elif isinstance(v, _List):
            check.equals = [_string(ctx, y, v.item_lines[i], f"{w}[{i}]")
                            for i, y in enumerate(v)]
        else:
            check.equals = [_string(ctx, v, ln, w)]
        out.append(check)
    return out


def _message(ctx: _Ctx, value: Any, line: int, where: str, request: bool) -> Message:
    keys = {"headers", "body", "trailers"} | ({"method", "path", "authority", "scheme"}
                                              if request else {"status"})
    m = ctx.mapping(value, line, where, keys)
    msg = Message()
    if request:
        msg.headers = [
            (":method", _string(ctx, m.get("method", "GET"), _line(m, "method"), f"{where}.method")),
            (":path", _string(ctx, m.get("path", "/"), _line(m, "path"), f"{where}.path")),
            (":authority", _string(ctx, m.get("authority", "example.com"),
                                   _line(m, "authority"), f"{where}.authority")),
            (":scheme", _string(ctx, m.get("scheme", "http"), _line(m, "scheme"),
                                f"{where}.scheme")),
        ]
    else:
        status = _number(ctx, m.get("status", 200), _line(m, "status"), f"{where}.status",
                         integer=True)
        msg.headers = [(":status", str(status))]
    if "headers" in m:
        msg.headers += _header_list(ctx, m["headers"], _line(m, "headers"), f"{where}.headers")
    if "body" in m:
        msg.body = _string(ctx, m["body"], _line(m, "body"), f"{where}.body")
    if "trailers" in m:
        msg.trailers = _header_list(ctx, m["trailers"], _line(m, "trailers"),
                                    f"{where}.trailers")
    return msg


def _answer_tail(ctx: _Ctx, a: CallAnswer | GrpcAnswer, m: _Map, ln: int, w: str,
                 string_keys: set[str], headers_key: str, text_key: str) -> None:
    """An http or gRPC answer's fail/timeout flags and its ``expect`` checks on the call:
    ``string_keys`` compare as strings, ``headers_key`` as header checks, ``text_key``
    as a text check."""
    a.fail = _bool(ctx, m["fail"], _line(m, "fail"), f"{w}.fail") if "fail" in m else False
    a.timeout = _bool(ctx, m["timeout"], _line(m, "timeout"), f"{w}.timeout") \
        if "timeout" in m else False
    if a.fail and a.timeout:
        raise ctx.fail(ln, w, "fail and timeout exclude each other")
    if "expect" in m:
        e = ctx.mapping(m["expect"], _line(m, "expect"), f"{w}.expect",
                        string_keys | {headers_key, text_key})
        for key, v in e.items():
            if key == headers_key:
                a.expect[key] = _header_checks(ctx, v, _line(e, key), f"{w}.expect.{key}")
            elif key == text_key:
                a.expect[key] = _text_check(ctx, v, _line(e, key), f"{w}.expect.{key}")
            else:
                a.expect[key] = _string(ctx, v, _line(e, key), f"{w}.expect.{key}")


def _answers(ctx: _Ctx, value: Any, line: int, where: str) -> list[CallAnswer]:
    if not isinstance(value, _List):
        raise ctx.fail(line, where, f"expected a list of answers, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        w, ln = f"{where}[{i}]", value.item_lines[i]
        m = ctx.mapping(item, ln, w, {"status", "headers", "body", "trailers", "fail",
                                      "timeout", "expect"})
        a = CallAnswer(line=ln)
        if "status" in m:
            a.status = _number(ctx, m["status"], _line(m, "status"), f"{w}.status", True)
        if "headers" in m:
            a.headers = _header_list(ctx, m["headers"], _line(m, "headers"), f"{w}.headers")
        if "trailers" in m:
            a.trailers = _header_list(ctx, m["trailers"], _line(m, "trailers"), f"{w}.trailers")
        if "body" in m:
            a.body = _string(ctx, m["body"], _line(m, "body"), f"{w}.body")
        _answer_tail(ctx, a, m, ln, w, {"cluster", "method", "path", "authority"},
                     "headers", "body")
        out.append(a)
    return out


def _grpc_answers(ctx: _Ctx, value: Any, line: int, where: str) -> list[GrpcAnswer]:
    import base64
    import binascii

    if not isinstance(value, _List):
        raise ctx.fail(line, where, f"expected a list of answers, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        w, ln = f"{where}[{i}]", value.item_lines[i]
        m = ctx.mapping(item, ln, w, {"message", "message_base64", "status", "status_message",
                                      "initial_metadata", "trailing_metadata", "fail",
                                      "timeout", "expect"})
        a = GrpcAnswer(line=ln)
        if "message" in m and "message_base64" in m:
            raise ctx.fail(ln, w, "give message or message_base64, not both")
        if "message" in m:
            a.message = _string(ctx, m["message"], _line(m, "message"), f"{w}.message").encode()
        if "message_base64" in m:
            text = _string(ctx, m["message_base64"], _line(m, "message_base64"),
                           f"{w}.message_base64")
            try:
                a.message = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ctx.fail(_line(m, "message_base64"), f"{w}.message_base64",
                               "not valid base64") from None
        if "status" in m:
            a.status = _number(ctx, m["status"], _line(m, "status"), f"{w}.status", True)
        if "status_message" in m:
            a.status_message = _string(ctx, m["status_message"], _line(m, "status_message"),
                                       f"{w}.status_message")
        for key in ("initial_metadata", "trailing_metadata"):
            if key in m:
                setattr(a, key, _header_list(ctx, m[key], _line(m, key), f"{w}.{key}"))
        _answer_tail(ctx, a, m, ln, w, {"cluster", "service", "method"}, "metadata", "message")
        out.append(a)
    return out


def _log_checks(ctx: _Ctx, value: Any, line: int, where: str) -> dict[int, list[TextCheck]]:
    if not isinstance(value, _Map):
        raise ctx.fail(line, where, f"expected a mapping level -> list of lines, "
                                    f"got {_kind(value)}")
    out: dict[int, list[TextCheck]] = {}
    for level, items in value.items():
        w, ln = f"{where}.{level}", _line(value, level)
        name = "warn" if level.lower() == "warning" else level.lower()
        if name not in abi.LEVEL_NAMES:
            raise ctx.fail(ln, w, f"unknown log level (one of {', '.join(abi.LEVEL_NAMES)})")
        seq = items if isinstance(items, _List) else None
        if seq is None:
            out[abi.LEVEL_NAMES.index(name)] = [_text_check(ctx, items, ln, w)]
            continue
        out[abi.LEVEL_NAMES.index(name)] = [
            _text_check(ctx, x, seq.item_lines[i], f"{w}[{i}]") for i, x in enumerate(seq)]
    return out


def _expect(ctx: _Ctx, value: Any, line: int, where: str) -> Expect:
    m = ctx.mapping(value, line, where, EXPECT_KEYS)
    e = Expect()
    for key, v in m.items():
        w, ln = f"{where}.{key}", _line(m, key)
        if key == "status":
            e.status = _number(ctx, v, ln, w, integer=True)
        elif key == "headers":
            e.headers = _header_checks(ctx, v, ln, w)
        elif key == "trailers":
            e.trailers = _header_checks(ctx, v, ln, w)
        elif key == "body":
            e.body = _text_check(ctx, v, ln, w)
        elif key == "local_reply":
            e.local_reply = _bool(ctx, v, ln, w)
        elif key == "paused":
            e.paused = _bool(ctx, v, ln, w)
        elif key == "http_calls":
            e.http_calls = _number(ctx, v, ln, w, integer=True)
        elif key == "grpc_calls":
            e.grpc_calls = _number(ctx, v, ln, w, integer=True)
        elif key == "upstream":
            u = ctx.mapping(v, ln, w, {"reached", "headers", "body"})
            for k, x in u.items():
                kl = _line(u, k)
                if k == "reached":
                    e.upstream_reached = _bool(ctx, x, kl, f"{w}.reached")
                elif k == "headers":
                    e.upstream_headers = _header_checks(ctx, x, kl, f"{w}.headers")
                else:
                    e.upstream_body = _text_check(ctx, x, kl, f"{w}.body")
        elif key == "logs":
            e.logs = _log_checks(ctx, v, ln, w)
        elif key == "no_logs":
            e.no_logs = _log_checks(ctx, v, ln, w)
        elif key == "metrics":
            if not isinstance(v, _Map):
                raise ctx.fail(ln, w, f"expected a mapping name -> value, got {_kind(v)}")
            e.metrics = {k: _number(ctx, x, _line(v, k), f"{w}.{k}", integer=True)
                         for k, x in v.items()}
    return e


def load_case_file(path: Path) -> CaseFile:
    """Parse and check a test file; CaseFileError (file:line: what) on the first problem."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WasmetoolError(f"test file {shown} does not exist",
                             "give YAML test files, or run in a project directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WasmetoolError(f"cannot read test file {shown}: {exc}") from None
    ctx = _Ctx(shown)
    try:
        loader = _Loader(text)
        loader.name = shown
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ctx.fail(line, "YAML", f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ctx.fail(1, "YAML", str(exc).splitlines()[0]) from None
    top = ctx.mapping(doc, 1, "file", FILE_KEYS)
    filt = _string(ctx, top["filter"], _line(top, "filter"), "filter") if "filter" in top else None
    settings = _settings(ctx, top, "")
    if "cases" not in top:
        raise ctx.fail(top.line, "file", "no cases: add a 'cases:' list")
    raw_cases = top["cases"]
    if not isinstance(raw_cases, _List) or not raw_cases:
        raise ctx.fail(_line(top, "cases"), "cases",
                       f"expected a non-empty list of cases, got {_kind(raw_cases)}")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_cases):
        where, ln = f"cases[{i}]", raw_cases.item_lines[i]
        m = ctx.mapping(raw, ln, where, CASE_KEYS)
        name = _string(ctx, m["name"], _line(m, "name"), f"{where}.name") if "name" in m \
            else f"case {i + 1}"
        if name in seen:
            raise ctx.fail(_line(m, "name"), f"{where}.name",
                           f"the name {name!r} is already used by the case on line {seen[name]}")
        seen[name] = ln
        if "expect" not in m:
            raise ctx.fail(ln, where, "no expect: say what the client must see")
        request = _message(ctx, m.get("request", _empty_map(ln)), _line(m, "request"),
                           f"{where}.request", True)
        response = _message(ctx, m.get("response", _empty_map(ln)), _line(m, "response"),
                            f"{where}.response", False)
        cases.append(Case(
            name=name, file=shown, line=ln,
            settings={**settings, **_settings(ctx, m, where)},
            request=request, response=response,
            http_calls=_answers(ctx, m["http_calls"], _line(m, "http_calls"),
                                f"{where}.http_calls") if "http_calls" in m else [],
            grpc_calls=_grpc_answers(ctx, m["grpc_calls"], _line(m, "grpc_calls"),
                                     f"{where}.grpc_calls") if "grpc_calls" in m else [],
            advance_before=_number(ctx, m["advance_before"], _line(m, "advance_before"),
                                   f"{where}.advance_before") if "advance_before" in m else 0,
            advance=_number(ctx, m["advance"], _line(m, "advance"), f"{where}.advance")
            if "advance" in m else 0,
            expect=_expect(ctx, m["expect"], _line(m, "expect"), f"{where}.expect"),
        ))
    return CaseFile(path, filt, settings, cases)


def _empty_map(line: int) -> _Map:
    m = _Map()
    m.line = line
    m.key_lines = {}
    return m


# ----------------------------------------------------------------------------- outcome
@dataclass
class Outcome:
    """What one request produced, as the client and the upstream saw it."""

    status: int | None
    headers: list[tuple[str, str]]
    body: str
    trailers: list[tuple[str, str]] = field(default_factory=list)
    local_reply: bool = False
    upstream_reached: bool = False
    upstream_headers: list[tuple[str, str]] = field(default_factory=list)
    upstream_body: str = ""
    logs: dict[int, list[str]] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    http_calls: int = 0
    grpc_calls: int = 0
    paused: bool = False


@dataclass
class Failure:
    message: str
    diff: str = ""


def _text_pairs(h: Any) -> list[tuple[str, str]]:
    if not h:
        return []
    return [(k.decode("utf-8", "replace") if isinstance(k, bytes) else k,
             v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in h]


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def _check_headers(what: str, checks: list[HeaderCheck],
                   actual: list[tuple[str, str]]) -> list[Failure]:
    problems: list[str] = []
    expected_lines = [f"{k}: {v}" for k, v in actual]
    for c in checks:
        values = _values(actual, c.name)
        shown = ", ".join(repr(v) for v in values) if values else "absent"
        if c.equals is not None and values != c.equals:
            want = ", ".join(repr(v) for v in c.equals)
            problems.append(f"{what} {c.name}: expected {want}, got {shown}")
            expected_lines = [ln for ln in expected_lines if not ln.startswith(f"{c.name}: ")]
            expected_lines += [f"{c.name}: {v}" for v in c.equals]
        elif c.present is True and not values:
            problems.append(f"{what} {c.name}: expected present, got absent")
            expected_lines.append(f"{c.name}: <any value>")
        elif c.present is False and values:
            problems.append(f"{what} {c.name}: expected absent, got {shown}")
            expected_lines = [ln for ln in expected_lines if not ln.startswith(f"{c.name}: ")]
        elif c.regex is not None and not any(re.search(c.regex, v) for v in values):
            problems.append(f"{what} {c.name}: expected a match for /{c.regex}/, got {shown}")
        elif c.contains is not None and not any(c.contains in v for v in values):
            problems.append(f"{what} {c.name}: expected to contain {c.contains!r}, got {shown}")
    if not problems:
        return []
    actual_lines = [f"{k}: {v}" for k, v in actual]
    diff = "\n".join(difflib.unified_diff(sorted(expected_lines), sorted(actual_lines),
                                          f"expected {what}", f"actual {what}", lineterm="", n=99))
    return [Failure("; ".join(problems), diff)]


def _text_ok(check: TextCheck, text: str) -> bool:
    if check.equals is not None:
        return text == check.equals
    if check.contains is not None:
        return check.contains in text
    return re.search(check.regex or "", text) is not None


def _text_want(check: TextCheck) -> str:
    if check.equals is not None:
        return repr(check.equals)
    if check.contains is not None:
        return f"text containing {check.contains!r}"
    return f"a match for /{check.regex}/"


def _check_text(what: str, check: TextCheck, text: str) -> list[Failure]:
    if _text_ok(check, text):
        return []
    short = text if len(text) <= 200 else text[:200] + f"… ({len(text)} chars)"
    diff = ""
    if check.equals is not None:
        diff = "\n".join(difflib.unified_diff(check.equals.splitlines(), text.splitlines(),
                                              f"expected {what}", f"actual {what}",
                                              lineterm=""))
    return [Failure(f"{what}: expected {_text_want(check)}, got {short!r}", diff)]


def check_outcome(e: Expect, o: Outcome) -> list[Failure]:
    """Every way ``o`` departs from ``e`` (empty: the case passed)."""
    out: list[Failure] = []
    if e.paused is not None and e.paused != o.paused:
        out.append(Failure(f"paused: expected {str(e.paused).lower()}, got "
                           f"{str(o.paused).lower()}"))
    elif e.paused is None and o.paused and o.status is None:
        out.append(Failure("the stream is still paused by the filter (no answer reached the "
                           "client): answer its http calls or advance the clock"))
    if e.status is not None and e.status != o.status:
        out.append(Failure(f"status: expected {e.status}, got {o.status}"))
    if e.local_reply is not None and e.local_reply != o.local_reply:
        out.append(Failure(f"local_reply: expected {str(e.local_reply).lower()}, got "
                           f"{str(o.local_reply).lower()}"))
    if e.headers:
        out += _check_headers("header", e.headers, o.headers)
    if e.trailers:
        out += _check_headers("trailer", e.trailers, o.trailers)
    if e.body is not None:
        out += _check_text("body", e.body, o.body)
    if e.upstream_reached is not None and e.upstream_reached != o.upstream_reached:
        out.append(Failure(f"upstream.reached: expected {str(e.upstream_reached).lower()}, "
                           f"got {str(o.upstream_reached).lower()}"))
    if e.upstream_headers:
        out += _check_headers("upstream header", e.upstream_headers, o.upstream_headers)
    if e.upstream_body is not None:
        out += _check_text("upstream body", e.upstream_body, o.upstream_body)
    for level, checks in e.logs.items():
        lines = o.logs.get(level, [])
        for c in checks:
            if not any(_text_ok(c, ln) for ln in lines):
                shown = "\n".join(f"  {ln}" for ln in lines) or "  (none)"
                out.append(Failure(f"logs.{abi.LEVEL_NAMES[level]}: no line matches "
                                   f"{_text_want(c)}", f"{abi.LEVEL_NAMES[level]} lines:\n{shown}"))
    for level, checks in e.no_logs.items():
        for c in checks:
            hit = next((ln for ln in o.logs.get(level, []) if _text_ok(c, ln)), None)
            if hit is not None:
                out.append(Failure(f"no_logs.{abi.LEVEL_NAMES[level]}: {hit!r} matches "
                                   f"{_text_want(c)}"))
    for name, want in e.metrics.items():
        got = o.metrics.get(name)
        if got != want:
            out.append(Failure(f"metric {name}: expected {want}, got "
                               f"{'undefined' if got is None else got}"))
    if e.http_calls is not None and e.http_calls != o.http_calls:
        out.append(Failure(f"http_calls: expected {e.http_calls}, got {o.http_calls}"))
    if e.grpc_calls is not None and e.grpc_calls != o.grpc_calls:
        out.append(Failure(f"grpc_calls: expected {e.grpc_calls}, got {o.grpc_calls}"))
    return out


# ----------------------------------------------------------------------------- running
@dataclass
class CaseResult:
    case: Case
    failures: list[Failure]
    seconds: float
    trace_tail: str = ""
    error: str = ""        # the case could not run (filter failed to start...)
    outcome: Outcome | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and not self.error

    def report(self) -> str:
        """The failure, as printed and put in --junit-xml."""
        parts = [self.error] if self.error else []
        for f in self.failures:
            parts.append(f.message)
            if f.diff:
                parts.append(f.diff)
        if self.trace_tail:
            parts.append("trace (last calls):\n" + self.trace_tail)
        return "\n".join(parts)


class ModuleSource:
    """Resolves a case file's ``filter`` to module bytes once per run (a path relative to
    the file, a store ref, or the project's build given by the caller)."""

    def __init__(self, default: tuple[bytes, str, list[str]] | None = None) -> None:
        self.default = default
        self._loaded: dict[str, tuple[bytes, str, list[str]]] = {}

    def get(self, case_file: CaseFile) -> tuple[bytes, str, list[str]]:
        from wasmetool.testing.root import read_module

        if case_file.filter is None:
            if self.default is None:
                raise WasmetoolError(f"{case_file.path}: no filter: given",
                                     "add 'filter: path/to/filter.wasm' (or a store ref), or "
                                     "run wasmetool test in the filter's project directory")
            return self.default
        ref = case_file.filter
        candidate = (case_file.path.parent / ref)
        key = str(candidate) if candidate.is_file() else ref
        if key not in self._loaded:
            self._loaded[key] = read_module(candidate if candidate.is_file() else ref)
        return self._loaded[key]


def _emulator(wasm: bytes, source: str, root_ids: list[str], settings: dict[str, Any]) -> Any:
    from wasmetool.testing.http import HttpEmulator

    root_id = settings.get("root_id", root_ids[0] if root_ids else "")
    return HttpEmulator(
        wasm, source=source, name=Path(source).stem if source.endswith(".wasm") else
        source.rsplit("/", 1)[-1].split(":", 1)[0],
        root_id=root_id, vm_id=settings.get("vm_id", ""),
        configuration=settings.get("configuration", ""),
        vm_configuration=settings.get("vm_configuration", ""),
        environment=settings.get("environment"), fail_open=settings.get("fail_open", False),
        clusters=settings.get("clusters", ()), strict=settings.get("strict", False),
        properties=settings.get("properties"),
        log_level=abi.TRACE)


def _answer(emu: Any, case: Case, answers: list[CallAnswer], failures: list[Failure]) -> None:
    """Answer pending http calls, in order, with the case's remaining answers."""
    while answers:
        pending = emu.pending_http_calls()
        if not pending:
            return
        call, a = pending[0], answers.pop(0)
        n = emu.http_calls.index(call)
        for key, want in a.expect.items():
            if key == "headers":
                failures.extend(_check_headers(f"http call #{n + 1} header", want,
                                               _text_pairs(call.headers)))
            elif key == "body":
                failures.extend(_check_text(f"http call #{n + 1} body", want,
                                            call.body.decode("utf-8", "replace")))
            else:
                got = call.cluster if key == "cluster" else getattr(call, key)
                if got != want:
                    failures.append(Failure(f"http call #{n + 1} {key}: expected {want!r}, "
                                            f"got {got!r}"))
        if a.fail:
            call.fail()
        elif a.timeout:
            emu.advance(call.timeout_ms / 1000.0)     # the clock passes the call's timeout
        else:
            call.respond(status=a.status, headers=_enc(a.headers), body=a.body.encode(),
                         trailers=_enc(a.trailers))
        emu.pump()


def _answer_grpc(emu: Any, answers: list[GrpcAnswer], failures: list[Failure]) -> None:
    """Answer open gRPC calls, in order, with the case's remaining gRPC answers."""
    while answers:
        open_calls = emu.open_grpc_calls()
        if not open_calls:
            return
        call, a = open_calls[0], answers.pop(0)
        n = emu.grpc_calls.index(call)
        for key, want in a.expect.items():
            if key == "metadata":
                failures.extend(_check_headers(f"grpc call #{n + 1} metadata", want,
                                               _text_pairs(call.metadata)))
            elif key == "message":
                sent = b"".join(call.sent).decode("utf-8", "replace")
                failures.extend(_check_text(f"grpc call #{n + 1} message", want, sent))
            elif getattr(call, key) != want:
                failures.append(Failure(f"grpc call #{n + 1} {key}: expected {want!r}, got "
                                        f"{getattr(call, key)!r}"))
        if a.fail:
            call.fail(a.status or 14, a.status_message.encode())
        elif a.timeout:
            if call.timeout_ms:
                emu.advance(call.timeout_ms / 1000.0)
            else:
                call.time_out()
        else:
            call.reply(a.message, a.status, a.status_message.encode(),
                       initial_metadata=_enc(a.initial_metadata),
                       trailing_metadata=_enc(a.trailing_metadata))
        emu.pump()


def _enc(h: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in h]


def run_case(case: Case, module: tuple[bytes, str, list[str]]) -> CaseResult:
    """Run one case on a fresh VM; never raises for a filter's misbehaviour."""
    from wasmetool.testing.trace import StrictModeError

    started = time.perf_counter()
    failures: list[Failure] = []
    outcome: Outcome | None = None
    try:
        emu = _emulator(*module, case.settings)
    except WasmetoolError as exc:
        return CaseResult(case, [], time.perf_counter() - started,
                          error=f"the filter did not start: {exc.message}")
    try:
        try:
            if case.advance_before:
                emu.advance(case.advance_before)
            ex = emu.new_exchange()
            req = case.request
            has_body, has_trl = req.body is not None, req.trailers is not None
            ex.send_request_headers(_enc(req.headers), end_stream=not has_body and not has_trl)
            if has_body:
                ex.send_request_body(req.body.encode(), end_stream=not has_trl)  # type: ignore[union-attr]
            if has_trl:
                ex.send_request_trailers(_enc(req.trailers))  # type: ignore[arg-type]
            answers = list(case.http_calls)
            grpc_answers = list(case.grpc_calls)

            def answer_calls() -> None:
                # an answer may lead to another call (of either kind): until nothing moves
                while True:
                    left = len(answers) + len(grpc_answers)
                    _answer(emu, case, answers, failures)
                    _answer_grpc(emu, grpc_answers, failures)
                    if len(answers) + len(grpc_answers) == left:
                        return

            answer_calls()
            if case.advance:
                emu.advance(case.advance)
                answer_calls()
            reached = ex.forwarded_headers is not None
            if ex.local_reply is None and ex.request_end and not ex.was_reset \
                    and not ex.stream.finished:
                resp = case.response
                rb, rt = resp.body is not None, resp.trailers is not None
                ex.send_response_headers_upstream(_enc(resp.headers),
                                                  end_stream=not rb and not rt)
                if rb:
                    ex.send_response_body_upstream(resp.body.encode(), end_stream=not rt)  # type: ignore[union-attr]
                if rt:
                    ex.send_response_trailers_upstream(_enc(resp.trailers))  # type: ignore[arg-type]
                answer_calls()
            paused = ex.paused
            if ex.local_reply is not None or ex.response_end or ex.was_reset:
                ex.complete()
            if answers:
                failures.append(Failure(f"{len(answers)} http call answer(s) unused: the "
                                        f"filter made {len(emu.http_calls)} http call(s)"))
            if grpc_answers:
                failures.append(Failure(f"{len(grpc_answers)} grpc call answer(s) unused: the "
                                        f"filter made {len(emu.grpc_calls)} gRPC call(s)"))
            logs: dict[int, list[str]] = {}
            for r in emu.logs:
                logs.setdefault(r.level, []).append(r.message)
            outcome = Outcome(
                status=ex.status, headers=_text_pairs(ex.headers), body=ex.body.decode(
                    "utf-8", "replace"),
                trailers=_text_pairs(ex.response_trailers),
                local_reply=ex.local_reply is not None, upstream_reached=reached,
                upstream_headers=_text_pairs(ex.forwarded_headers),
                upstream_body=ex.forwarded_body.decode("utf-8", "replace"),
                logs=logs, metrics=emu.metrics(), http_calls=len(emu.http_calls),
                grpc_calls=len(emu.grpc_calls),
                paused=paused)
            failures += check_outcome(case.expect, outcome)
        except StrictModeError as exc:
            failures.append(Failure(str(exc).split("\ntrace tail:")[0]))
        except (WasmetoolError, RuntimeError, ValueError) as exc:
            failures.append(Failure(f"the case could not run: {exc}"))
        tail = emu.trace_tail(25) if failures else ""
        return CaseResult(case, failures, time.perf_counter() - started, trace_tail=tail,
                          outcome=outcome)
    finally:
        emu.close()


def select(cases: list[Case], keywords: list[str]) -> list[Case]:
    """-k: a case runs if its name contains any keyword (case-insensitive); a keyword
    'not X' excludes names containing X."""
    if not keywords:
        return cases
    wanted = [k.lower() for k in keywords if not k.lower().startswith("not ")]
    unwanted = [k[4:].strip().lower() for k in keywords if k.lower().startswith("not ")]
    out = []
    for c in cases:
        name = c.name.lower()
        if any(u in name for u in unwanted):
            continue
        if wanted and not any(w in name for w in wanted):
            continue
        out.append(c)
    return out


def junit_xml(results: list[CaseResult], seconds: float) -> str:
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="wasmetool test", tests=str(len(results)),
                        failures=str(sum(1 for r in results if r.failures)),
                        errors=str(sum(1 for r in results if r.error)),
                        time=f"{seconds:.3f}")
    by_file: dict[str, list[CaseResult]] = {}
    for r in results:
        by_file.setdefault(r.case.file, []).append(r)
    for file, items in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=file, tests=str(len(items)),
                              failures=str(sum(1 for r in items if r.failures)),
                              errors=str(sum(1 for r in items if r.error)),
                              time=f"{sum(r.seconds for r in items):.3f}")
        for r in items:
            tc = ET.SubElement(suite, "testcase", classname=file, name=r.case.name,
                               file=file, line=str(r.case.line), time=f"{r.seconds:.3f}")
            if r.error:
                ET.SubElement(tc, "error", message=r.error).text = r.report()
            elif r.failures:
                ET.SubElement(tc, "failure", message=r.failures[0].message).text = r.report()
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def results_json(results: list[CaseResult], seconds: float) -> dict[str, Any]:
    return {
        "passed": sum(1 for r in results if r.passed),
        "failed": sum(1 for r in results if not r.passed),
        "seconds": round(seconds, 4),
        "cases": [{
            "file": r.case.file, "name": r.case.name, "line": r.case.line,
            "passed": r.passed, "seconds": round(r.seconds, 4),
            "error": r.error or None,
            "failures": [{"message": f.message, "diff": f.diff or None} for f in r.failures],
            "trace": r.trace_tail or None,
        } for r in results],
    }
