"""`wasmetool test`: YAML cases on the WAT filters, through the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PASSING = """\
filter: headers.wasm
cases:
  - name: headers are rewritten both ways
    request:
      path: /x
      headers: {x-replace-me: a, x-remove-me: b}
    response:
      status: 201
      headers: {content-type: text/plain, x-upstream-name: u}
      body: hello
    expect:
      status: 201
      local_reply: false
      headers:
        x-added-resp: yes
        content-type: {regex: "^text/x-"}
        x-upstream-name: {absent: true}
      body: hello
      upstream:
        reached: true
        headers: {x-added-req: yes, x-replace-me: replaced, x-remove-me: {absent: true}}
"""


@pytest.fixture
def workdir(tmp_path: Path, wat) -> Path:
    for name in ("headers", "http_call", "tick", "metrics", "local_reply", "callout_auth",
                 "properties"):
        shutil.copy(wat(name), tmp_path / f"{name}.wasm")
    return tmp_path


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_passing_file(cli, workdir: Path) -> None:
    path = write(workdir, "h.test.yaml", PASSING)
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err
    assert "PASS" in done.out and "1 case: 1 passed, 0 failed" in done.out


def test_http_calls_clock_logs_metrics_and_local_replies(cli, workdir: Path) -> None:
    path = write(workdir, "more.test.yaml", """\
filter: http_call.wasm
clusters: [callout]
cases:
  - name: answered call
    http_calls:
      - status: 200
        headers: {x-upstream-name: auth}
        body: granted
        expect: {cluster: callout, method: GET, path: "/auth?x=1"}
    expect:
      http_calls: 1
      upstream:
        headers: {x-callout-status: "200", x-callout-upstream: auth, x-callout-body: granted}
  - name: failed call
    http_calls: [{fail: true}]
    expect:
      upstream: {headers: {x-callout-failed: "1"}}
  - name: timed out call
    http_calls: [{timeout: true}]
    expect:
      upstream: {headers: {x-callout-failed: "1"}}
  - name: unanswered call keeps the request paused
    expect:
      paused: true
      upstream: {reached: false}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err
    assert "4 cases: 4 passed" in done.out

    path = write(workdir, "tick.test.yaml", """\
filter: tick.wasm
cases:
  - name: the tick resumes the request
    advance: 0.01
    expect:
      status: 200
      upstream: {headers: {x-resumed-by: tick}}
  - name: before the tick nothing moves
    advance: 0.005
    expect: {paused: true, upstream: {reached: false}}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err

    path = write(workdir, "metrics.test.yaml", """\
filter: metrics.wasm
cases:
  - name: metrics and logs
    expect:
      metrics: {conformance_requests: 1, conformance_level: 10}
      logs:
        info: ["conformance log: request"]
        warn: [{regex: "^conformance w"}]
      no_logs:
        error: [{regex: "."}]
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err

    path = write(workdir, "deny.test.yaml", """\
filter: local_reply.wasm
cases:
  - name: denied
    request: {path: /deny}
    expect:
      status: 403
      local_reply: true
      body: "denied by wasm filter\\n"
      headers: {x-local-reply: wasm}
      upstream: {reached: false}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err


def test_failure_prints_a_diff_and_writes_junit(cli, workdir: Path) -> None:
    broken = PASSING.replace("x-added-resp: yes", "x-added-resp: no").replace(
        "body: hello\n      upstream", "body: bye\n      upstream")
    path = write(workdir, "h.test.yaml", broken + """\
  - name: second case passes
    expect: {status: 200}
""")
    report = workdir / "out" / "junit.xml"
    report.parent.mkdir()
    done = cli("test", str(path), "--junit-xml", str(report))
    assert done.code == 1
    assert "FAIL" in done.out and "header x-added-resp: expected 'no', got 'yes'" in done.out
    assert "-x-added-resp: no" in done.out and "+x-added-resp: yes" in done.out
    assert "body: expected 'bye', got 'hello'" in done.out
    assert "proxy_add_header_map_value(map=response_headers, key='x-added-resp'" in done.out
    assert "2 cases: 1 passed, 1 failed" in done.out
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and "x-added-resp" in failure.get("message", "")
    assert "+x-added-resp: yes" in (failure.text or "")


def test_keyword_selection_and_json(cli, workdir: Path) -> None:
    path = write(workdir, "h.test.yaml", PASSING + """\
  - name: plain get
    expect: {status: 200}
  - name: plain head
    request: {method: HEAD}
    expect: {status: 200, upstream: {headers: {":method": HEAD}}}
""")
    done = cli("test", str(path), "-k", "plain", "-k", "not head", "-o", "json")
    assert done.code == 0, done.err
    data = json.loads(done.out)
    assert [c["name"] for c in data["cases"]] == ["plain get"]
    assert data["passed"] == 1 and data["failed"] == 0
    done = cli("test", str(path), "-k", "nothing-like-this")
    assert done.code == 1 and done.err.startswith("error: no case matched -k")


@pytest.mark.parametrize(("text", "message"), [
    ("filter: x.wasm\ncases:\n  - name: a\n    expect: {status: twohundred}\n",
     "h.test.yaml:4: cases[0].expect.status: expected an integer, got a string"),
    ("filter: x.wasm\ncases:\n  - name: a\n    expct: {}\n",
     "h.test.yaml:4: cases[0].expct: unknown key"),
    ("filter: x.wasm\ncases:\n  - name: a\n    expect:\n      headers: {a: {regex: '('}}\n",
     "h.test.yaml:5: cases[0].expect.headers.a.regex: not a valid regular expression"),
    ("filter: x.wasm\ncases:\n  - name: a\n    expect: {status: 200\n",
     "h.test.yaml:5: YAML:"),
    ("filter: x.wasm\ncases: []\n", "h.test.yaml:2: cases: expected a non-empty list"),
    ("filter: x.wasm\ncases:\n  - name: a\n    expect: {}\n  - name: a\n    expect: {}\n",
     "h.test.yaml:5: cases[1].name: the name 'a' is already used by the case on line 3"),
    ("filter: x.wasm\ncases:\n  - name: a\n", "h.test.yaml:3: cases[0]: no expect"),
    ("filter: x.wasm\ncases:\n  - name: a\n    grpc_calls:\n      - message_base64: '%%'\n"
     "    expect: {}\n",
     "h.test.yaml:5: cases[0].grpc_calls[0].message_base64: not valid base64"),
    ("filter: x.wasm\ncases:\n  - name: a\n    grpc_calls:\n      - {fail: true, timeout: true}\n"
     "    expect: {}\n",
     "h.test.yaml:5: cases[0].grpc_calls[0]: fail and timeout exclude each other"),
])
def test_malformed_file_is_one_line_with_file_and_line(cli, tmp_path: Path, text: str,
                                                       message: str) -> None:
    path = write(tmp_path, "h.test.yaml", text)
    done = cli("test", str(path))
    assert done.code == 1 and done.out == ""
    assert done.err.count("\n") == 1 and "Traceback" not in done.err
    assert done.err.startswith(f"error: {tmp_path}/") and message in done.err, done.err


def test_missing_inputs(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli("test")
    assert done.code == 1 and "is not a project (no wasmetool.toml)" in done.err
    done = cli("test", "nope.test.yaml")
    assert done.code == 1 and "test file nope.test.yaml does not exist" in done.err
    path = write(tmp_path, "h.test.yaml", "filter: gone.wasm\ncases:\n  - expect: {}\n")
    done = cli("test", str(path))
    assert done.code == 1 and "gone.wasm does not exist" in done.err
    path = write(tmp_path, "n.test.yaml", "cases:\n  - expect: {}\n")
    done = cli("test", str(path))
    assert done.code == 1 and "no filter: given" in done.err


def test_a_filter_that_fails_to_start_fails_its_cases(cli, workdir: Path) -> None:
    (workdir / "bad.wasm").write_bytes(b"\0asm\1\0\0\0")   # a module, but no proxy-wasm ABI
    path = write(workdir, "b.test.yaml", "filter: bad.wasm\ncases:\n  - expect: {}\n")
    done = cli("test", str(path))
    assert done.code == 1 and "the filter did not start" in done.out


def test_filter_from_the_store_and_configuration_as_json(cli, workdir: Path, wat) -> None:
    stored = cli("build", "precompiled", str(wat("config")), "-t", "me/config:v2")
    assert stored.code == 0, stored.err
    path = write(workdir, "ref.test.yaml", """\
filter: me/config:v2
configuration: {header: x-hello, values: [1, 2]}
vm_configuration: vm-side
cases:
  - name: the configuration reaches the filter as JSON
    expect:
      upstream:
        headers:
          x-plugin-config: '{"header": "x-hello", "values": [1, 2]}'
          x-vm-config: vm-side
  - name: a case overrides it
    configuration: plain
    expect:
      upstream: {headers: {x-plugin-config: plain}}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err


def test_properties_seeded_for_the_filter(cli, workdir: Path) -> None:
    path = write(workdir, "p.test.yaml", """\
filter: properties.wasm
cases:
  - name: without
    expect: {upstream: {headers: {x-p-missing: {regex: "^status:"}}}}
  - name: seeded
    properties: {no_such_property: seeded}
    expect: {upstream: {headers: {x-p-missing: seeded}}}
""")
    done = cli("test", str(path))
    assert done.code == 0, done.out + done.err
