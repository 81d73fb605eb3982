"""One YAML case, two ways: `wasmetool test` (in-process emulator) and `wasmetool run` with a
real request over a socket. Both must see the same status, headers and body, and the same
expectations must pass and fail with the same messages: the harness and the proxy share
one host."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.filters import FilterBuilder
from tests.support.hello import http_get, running
from wasmetool.testing.cases import Case, Outcome, check_outcome, load_case_file, run_case

pytestmark = pytest.mark.integration

CASES = """\
filter: {filter}
configuration: parity-config
cases:
  - name: request and response rewritten
    request:
      method: POST
      path: /parity?q=1
      headers: {{x-replace-me: before, x-remove-me: gone, x-keep: kept}}
      body: request-body
    response:
      status: 202
      headers: {{content-type: text/plain, x-upstream-name: up, x-extra: e}}
      body: response body
    expect:
      status: 202
      headers:
        x-added-resp: "yes"
        content-type: text/x-filtered
        x-upstream-name: {{absent: true}}
        x-extra: e
      body: response body
      upstream:
        reached: true
        headers:
          x-added-req: "yes"
          x-replace-me: replaced
          x-remove-me: {{absent: true}}
          x-keep: kept
        body: request-body
  - name: expectations that do not hold
    request: {{path: /wrong}}
    response: {{status: 200, body: ok}}
    expect:
      status: 404
      headers: {{x-added-resp: "no", content-type: {{present: true}}}}
      body: {{contains: missing}}
      upstream: {{headers: {{x-added-req: {{absent: true}}}}}}
"""
COMPARED_RESPONSE = ("x-added-resp", "content-type", "x-upstream-name", "x-extra")
COMPARED_UPSTREAM = (":method", ":path", "x-added-req", "x-replace-me", "x-remove-me", "x-keep")


@contextlib.contextmanager
def case_upstream(case: Case) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An upstream on 127.0.0.1 that answers with the case's response and records requests."""
    seen: list[dict[str, Any]] = []
    status = int(dict(case.response.headers)[":status"])
    headers = [(k, v) for k, v in case.response.headers if not k.startswith(":")]
    body = (case.response.body or "").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            seen.append({"method": self.command, "path": self.path,
                         "headers": [(k.lower(), v) for k, v in self.headers.items()],
                         "body": self.rfile.read(length).decode()})
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def live_outcome(case: Case, filter_path: Path, workdir: Path) -> tuple[Outcome, str]:
    """The case through `wasmetool run --trace` and a real request: (outcome, run's log)."""
    request = dict(case.request.headers)
    extra = {k: v for k, v in case.request.headers if not k.startswith(":")}
    with case_upstream(case) as (upstream, seen), \
            running(str(filter_path), workdir, "--upstream", upstream, "--trace",
                    "--config", case.settings["configuration"]) as (url, log):
        status, headers, body = http_get(url, request[":path"], request[":method"],
                                         (case.request.body or "").encode() or None, extra)
    log_text = log.read_text(errors="replace")
    got = seen[0] if seen else None
    upstream_headers = []
    if got is not None:
        upstream_headers = [(":method", got["method"]), (":path", got["path"]),
                            *got["headers"]]
    return Outcome(status=status, headers=[(k.lower(), v) for k, v in headers.items()],
                   body=body.decode(), upstream_reached=got is not None,
                   upstream_headers=upstream_headers,
                   upstream_body=got["body"] if got else ""), log_text


def picked(headers: list[tuple[str, str]], names: tuple[str, ...]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers if k in names)


def test_same_case_same_result_in_the_harness_and_the_proxy(cli, tmp_path: Path) -> None:
    FilterBuilder(tmp_path)("headers")          # tmp_path/headers.wasm
    cases_path = tmp_path / "parity.test.yaml"
    cases_path.write_text(CASES.format(filter="headers.wasm"))

    done = cli("test", str(cases_path), "-o", "json")
    report = json.loads(done.out)
    assert [c["passed"] for c in report["cases"]] == [True, False]

    case_file = load_case_file(cases_path)
    module = ((tmp_path / "headers.wasm").read_bytes(), "headers.wasm", [])
    for case in case_file.cases:
        harness = run_case(case, module).outcome
        assert harness is not None
        live, log = live_outcome(case, tmp_path / "headers.wasm",
                                 tmp_path / case.name.replace(" ", "-"))
        assert live.status == harness.status
        assert live.body == harness.body
        assert picked(live.headers, COMPARED_RESPONSE) == \
            picked(harness.headers, COMPARED_RESPONSE)
        assert live.upstream_reached == harness.upstream_reached
        assert picked(live.upstream_headers, COMPARED_UPSTREAM) == \
            picked(harness.upstream_headers, COMPARED_UPSTREAM)
        assert live.upstream_body == harness.upstream_body
        live_failures = [f.message for f in check_outcome(case.expect, live)]
        harness_failures = [f.message for f in check_outcome(case.expect, harness)]
        assert live_failures == harness_failures
    assert len(harness_failures) == 4          # the second case fails the same four ways

    # `run --trace` printed the same decoded calls the harness records
    assert "trace [headers #2] → proxy_on_request_headers(num_headers=" in log
    assert "trace [headers #2]     proxy_add_header_map_value(map=response_headers, " \
           "key='x-added-resp', value='yes') = OK" in log
    assert "trace [headers #2] ← proxy_on_response_headers = Continue" in log
