"""C++: `wasmetool init` -> `wasmetool build cpp` (local clang) -> real Envoy 1.40.

Also runs a second filter that exercises more of the header-only SDK (request
headers, bodies, local responses, shared data with CAS, properties, metrics)
through Envoy, and checks that a compile error reaches the user as clang
printed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.envoy import run_envoy
from tests.support.hello import hello_through_envoy, hello_through_run
from tests.support.hello import http_get as get
from tests.support.plugins import ProxySetup, WasmPlugin
from tests.support.ports import wait_until
from tests.support.upstream import run_echo_upstream
from tests.support.wasmetool_run import wasmetool_command

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmetool-home")


def wasmetool(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WASMETOOL_HOME": str(home)}
    return subprocess.run([*wasmetool_command(), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300, check=False)


def init_project(home: Path, directory: Path) -> None:
    done = wasmetool(home, "init", str(directory), "--language", "cpp", "--disable-prompt")
    assert done.returncode == 0, done.stderr


def build(home: Path, directory: Path, tag: str, out: Path) -> subprocess.CompletedProcess[str]:
    return wasmetool(home, "build", "cpp", str(directory), "-t", tag, "--out", str(out))


def test_template_builds_and_adds_hello_header_in_envoy(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "cpp-hello"
    init_project(home, project)
    assert (project / "proxy_wasm" / "proxy_wasm.h").is_file()
    assert json.loads((project / "runtime-config.json").read_text())["config"]["rootIds"] == ["hello_root"]
    wasm = tmp_path / "hello.wasm"
    done = build(home, project, "test/cpp:v1", wasm)
    assert done.returncode == 0, done.stderr
    assert "stored test/cpp:v1" in done.stdout

    reply = hello_through_envoy(wasm, tmp_path / "envoy-default")
    assert (reply.status, reply.hello) == (200, ["world"])
    assert "GET /greet?x=1" in reply.logs  # the per-request info log
    reply = hello_through_envoy(wasm, tmp_path / "envoy-config", "  from-config\n")
    assert (reply.status, reply.hello) == (200, ["from-config"])

    again = build(home, project, "test/cpp:v1", wasm)
    assert again.returncode == 0, again.stderr
    assert "cached" in again.stdout


def test_template_through_wasmetool_run(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "cpp-run"
    init_project(home, project)
    done = build(home, project, "test/cpp-run:v1", tmp_path / "run.wasm")
    assert done.returncode == 0, done.stderr
    # The stored image's runtime config gives run its root id (hello_root).
    reply = hello_through_run("test/cpp-run:v1", tmp_path / "default", home=home)
    assert (reply.status, reply.hello) == (200, ["world"])
    reply = hello_through_run("test/cpp-run:v1", tmp_path / "config", "--config", "from-run", home=home)
    assert (reply.status, reply.hello) == (200, ["from-run"])


def test_compile_error_is_shown_as_clang_printed_it(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "broken"
    init_project(home, project)
    source = project / "filter.cc"
    source.write_text(source.read_text() + "\nint broken() { return undeclared_name; }\n")
    done = build(home, project, "test/broken:v1", tmp_path / "broken.wasm")
    assert done.returncode == 1
    assert "filter.cc:" in done.stderr and "undeclared_name" in done.stderr
    assert "error:" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "broken.wasm").exists()


# A filter touching more of the SDK than the template: request headers (get,
# add, replace, remove, pairs), a local response, request body rewrite, shared
# data with compare-and-swap, properties, a counter metric, response headers.
SDK_TOUR = r"""
#include <cctype>
#include <string>

#include "proxy_wasm/proxy_wasm.h"

class TourRoot : public RootContext {
 public:
  TourRoot(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}
  bool onConfigure(size_t) override {
    return defineMetric(MetricType::Counter, "sdk_tour_requests", &requests_metric) == WasmResult::Ok;
  }
  uint32_t requests_metric = 0;
};

class TourContext : public Context {
 public:
  TourContext(uint32_t id, RootContext* root) : Context(id, root) {}

  FilterHeadersStatus onRequestHeaders(uint32_t headers, bool) override {
    if (!getRequestHeader("x-deny")->view().empty()) {
      sendLocalResponse(403, "denied_by_sdk_tour", "denied by sdk tour\n",
                        {{"x-denied-by", "sdk-tour"}});
      return FilterHeadersStatus::StopIteration;
    }
    // A request counter shared by every context of this VM, updated with CAS.
    uint64_t count = 0;
    for (int attempt = 0; attempt < 10; ++attempt) {
      WasmDataPtr value;
      uint32_t cas = 0;
      count = getSharedData("sdk_tour_count", &value, &cas) == WasmResult::Ok
                  ? std::stoull(value->toString()) + 1 : 1;
      if (setSharedData("sdk_tour_count", std::to_string(count), cas) == WasmResult::Ok) break;
    }
    count_ = std::to_string(count);
    auto* tour_root = static_cast<TourRoot*>(root());
    incrementMetric(tour_root->requests_metric, 1);

    replaceRequestHeader("x-count", count_);
    removeRequestHeader("x-remove-me");
    addRequestHeader("x-header-count", std::to_string(headers));
    addRequestHeader("x-pairs-count", std::to_string(getRequestHeaderPairs()->pairs().size()));
    std::string path;
    if (getValue({"request", "path"}, &path)) addRequestHeader("x-path-property", path);
    std::string root_id;
    if (getValue({"plugin_root_id"}, &root_id)) addRequestHeader("x-root-id", root_id);
    return FilterHeadersStatus::Continue;
  }

  FilterDataStatus onRequestBody(size_t body_size, bool end_of_stream) override {
    if (!end_of_stream) return FilterDataStatus::StopIterationAndBuffer;
    std::string body = getBufferBytes(WasmBufferType::HttpRequestBody, 0, body_size)->toString();
    for (char& c : body) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    setBuffer(WasmBufferType::HttpRequestBody, 0, body_size, body);
    return FilterDataStatus::Continue;
  }

  FilterHeadersStatus onResponseHeaders(uint32_t, bool) override {
    addResponseHeader("x-request-count", count_);
    addResponseHeader("x-saw-upstream", getResponseHeader("x-upstream-name")->toString());
    return FilterHeadersStatus::Continue;
  }

 private:
  std::string count_;
};

static RegisterContextFactory register_tour(CONTEXT_FACTORY(TourContext), ROOT_FACTORY(TourRoot),
                                            "tour_root");
"""


def test_sdk_tour_filter_in_envoy(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "sdk-tour"
    init_project(home, project)
    (project / "filter.cc").write_text(SDK_TOUR)
    wasm = tmp_path / "tour.wasm"
    done = build(home, project, "test/sdk-tour:v1", wasm)
    assert done.returncode == 0, done.stderr

    with run_echo_upstream() as upstream:
        setup = ProxySetup(upstream=upstream.url, http_filters=[WasmPlugin(
            name="tour", wasm=wasm, root_id="tour_root")])
        with run_envoy(setup, tmp_path / "envoy") as envoy:
            status, headers, body = get(envoy.url, "/first", headers={
                "x-remove-me": "1", "x-count": "client-value"})
            assert status == 200
            assert headers["x-request-count"] == "1"
            assert headers["x-saw-upstream"] == upstream.name
            seen = dict(json.loads(body)["headers"])
            assert seen["x-count"] == "1"            # replaced, not the client's value
            assert "x-remove-me" not in seen
            assert seen["x-path-property"] == "/first"
            assert seen["x-root-id"] == "tour_root"
            assert int(seen["x-header-count"]) == int(seen["x-pairs-count"]) >= 4

            status, headers, body = get(envoy.url, "/second", method="POST", body=b"shout it",
                                        headers={"content-type": "text/plain"})
            assert status == 200
            assert headers["x-request-count"] == "2"   # shared data kept the count
            assert json.loads(body)["body"] == "SHOUT IT"

            status, headers, body = get(envoy.url, "/third", headers={"x-deny": "yes"})
            assert status == 403
            assert headers["x-denied-by"] == "sdk-tour"
            assert body == b"denied by sdk tour\n"
            requests_seen = len(upstream.requests)
            assert requests_seen == 2                  # the denied request never left Envoy

            stats = envoy.admin("/stats?filter=sdk_tour_requests")
            assert stats.strip().endswith(": 2"), stats


# Callouts and timers: an HTTP call to a named cluster that pauses the request
# until the answer arrives, a tick that counts into shared data, a shared queue
# drained by the root context, and LOG_* level filtering.
SDK_CALLOUTS = r"""
#include <string>

#include "proxy_wasm/proxy_wasm.h"

class CalloutRoot : public RootContext {
 public:
  CalloutRoot(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}
  bool onStart(size_t) override {
    registerSharedQueue("callout_queue", &queue_);
    setTickPeriodMilliseconds(20);
    return true;
  }
  void onTick() override {
    WasmDataPtr value;
    uint32_t cas = 0;
    uint64_t ticks = getSharedData("callout_ticks", &value, &cas) == WasmResult::Ok
                         ? std::stoull(value->toString()) : 0;
    setSharedData("callout_ticks", std::to_string(ticks + 1), cas);
  }
  void onQueueReady(uint32_t token) override {
    WasmDataPtr item;
    while (dequeueSharedQueue(token, &item) == WasmResult::Ok) {
      LOG_INFO("dequeued " + item->toString());
    }
  }

 private:
  uint32_t queue_ = 0;
};

class CalloutContext : public Context {
 public:
  CalloutContext(uint32_t id, RootContext* root) : Context(id, root) {}

  FilterHeadersStatus onRequestHeaders(uint32_t, bool) override {
    uint32_t queue = 0;
    if (resolveSharedQueue("", "callout_queue", &queue) == WasmResult::Ok) {
      enqueueSharedQueue(queue, getRequestHeader(":path")->toString());
    }
    LOG_TRACE("this trace line is below the log level");
    const uint32_t context_id = id();
    WasmResult result = root()->httpCall(
        "callout", {{":method", "GET"}, {":path", "/callout"}, {":authority", "callout"}}, "", {},
        5000, [context_id](uint32_t headers, size_t body_size, uint32_t) {
          // The answer arrives on the root context; act on the paused request.
          Context* context = getContext(context_id);
          if (context == nullptr) return;
          context->setEffectiveContext();
          if (headers == 0) {
            sendLocalResponse(502, "callout_failed", "callout failed\n", {});
            return;
          }
          addRequestHeader("x-callout-upstream",
                           getHeaderMapValue(WasmHeaderMapType::HttpCallResponseHeaders,
                                             "x-upstream-name")->toString());
          addRequestHeader("x-callout-body-bytes", std::to_string(body_size));
          continueRequest();
        });
    if (result != WasmResult::Ok) {
      sendLocalResponse(500, "callout_not_sent", toString(result), {});
      return FilterHeadersStatus::StopIteration;
    }
    return FilterHeadersStatus::StopIteration;
  }

  FilterHeadersStatus onResponseHeaders(uint32_t, bool) override {
    addResponseHeader("x-ticks", getSharedDataValue("callout_ticks")->toString());
    return FilterHeadersStatus::Continue;
  }
};

static RegisterContextFactory register_callouts(CONTEXT_FACTORY(CalloutContext),
                                                ROOT_FACTORY(CalloutRoot));
"""


def test_sdk_callouts_ticks_and_queues_in_envoy(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "sdk-callouts"
    init_project(home, project)
    (project / "filter.cc").write_text(SDK_CALLOUTS)
    wasm = tmp_path / "callouts.wasm"
    done = build(home, project, "test/sdk-callouts:v1", wasm)
    assert done.returncode == 0, done.stderr

    with run_echo_upstream() as upstream, run_echo_upstream("callout-service") as callout:
        setup = ProxySetup(upstream=upstream.url, clusters={"callout": callout.url},
                           http_filters=[WasmPlugin(name="callouts", wasm=wasm,
                                                    root_id="any_root")])
        with run_envoy(setup, tmp_path / "envoy") as envoy:
            time.sleep(0.2)  # a few ticks
            status, headers, body = get(envoy.url, "/paused")
            assert status == 200
            seen = dict(json.loads(body)["headers"])
            assert seen["x-callout-upstream"] == "callout-service"
            assert int(seen["x-callout-body-bytes"]) > 0
            assert [r["path"] for r in callout.requests] == ["/callout"]
            assert int(headers["x-ticks"]) > 0
            wait_until(lambda: "dequeued /paused" in envoy.logs(), 5, what="queue log")
            assert "below the log level" not in envoy.logs()
