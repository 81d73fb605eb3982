// proxy_wasm/context.h - root and stream contexts, and how they are created.
//
// Part of wasmetool's header-only C++ SDK.
//
// The proxy creates one *root context* per plugin (identified by its root id)
// and, for each HTTP request or TCP connection, one *stream context* whose
// parent is that root context. A filter subclasses RootContext and Context and
// registers factories for them:
//
//   static RegisterContextFactory register_my_filter(CONTEXT_FACTORY(MyContext),
//                                                    ROOT_FACTORY(MyRootContext), "my_root_id");
//
// An empty root id (the default) matches every plugin that has no factory of its
// own; a module that registers a single set of factories serves any root id.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy_wasm/api.h"

class RootContext;
class Context;

class ContextBase {
 public:
  explicit ContextBase(uint32_t id) : id_(id) {}
  virtual ~ContextBase() = default;

  uint32_t id() const { return id_; }

  // Route the following host calls to this context (e.g. from an HTTP call
  // callback, which the proxy delivers to the root context).
  WasmResult setEffectiveContext() { return proxy_set_effective_context(id_); }

  virtual RootContext* asRoot() { return nullptr; }
  virtual Context* asContext() { return nullptr; }

  // Lifecycle, in Envoy's order for HTTP streams: onLog, onDone, onDelete.
  virtual void onCreate() {}
  virtual void onLog() {}
  virtual void onDelete() {}

 private:
  uint32_t id_;
};

// Called with the response of an httpCall: number of headers, body size, number
// of trailers. headers == 0 means the call failed (see getStatus()).
using HttpCallCallback = std::function<void(uint32_t headers, size_t body_size, uint32_t trailers)>;

class RootContext : public ContextBase {
 public:
  RootContext(uint32_t id, std::string_view root_id) : ContextBase(id), root_id_(root_id) {}

  std::string_view root_id() const { return root_id_; }
  RootContext* asRoot() override { return this; }

  // The VM started; its configuration is buffer WasmBufferType::VmConfiguration.
  virtual bool onStart(size_t /*vm_configuration_size*/) { return true; }
  // Check a new configuration before it is applied (Envoy: proxy_validate_configuration).
  virtual bool validateConfiguration(size_t /*configuration_size*/) { return true; }
  // The plugin is configured; read it with
  // getBufferBytes(WasmBufferType::PluginConfiguration, 0, configuration_size).
  // Returning false rejects the configuration.
  virtual bool onConfigure(size_t /*configuration_size*/) { return true; }
  // Every tick period (see setTickPeriodMilliseconds).
  virtual void onTick() {}
  // A shared queue registered by this root context has data.
  virtual void onQueueReady(uint32_t /*token*/) {}
  // The proxy wants to shut the plugin down. Return false to finish pending
  // work first, then call done().
  virtual bool onDone() { return true; }
  virtual void onForeignFunction(uint32_t /*function_id*/, uint32_t /*arguments_size*/) {}

  // gRPC callouts made with grpcCall/grpcStream report back here.
  virtual void onGrpcReceiveInitialMetadata(uint32_t /*token*/, uint32_t /*headers*/) {}
  virtual void onGrpcReceive(uint32_t /*token*/, size_t /*body_size*/) {}
  virtual void onGrpcReceiveTrailingMetadata(uint32_t /*token*/, uint32_t /*trailers*/) {}
  virtual void onGrpcClose(uint32_t /*token*/, GrpcStatus /*status*/) {}

  WasmResult setTickPeriodMilliseconds(uint32_t period) {
    return proxy_set_tick_period_milliseconds(period);
  }
  WasmResult done() { return proxy_done(); }

  // An HTTP request to a cluster the proxy knows (`uri` is the cluster name).
  // The headers must include :method, :path and :authority. The callback runs
  // on this root context; call setEffectiveContext() on a stream context first
  // if it should act on that stream.
  WasmResult httpCall(std::string_view uri, const HeaderStringPairs& request_headers,
                      std::string_view request_body, const HeaderStringPairs& request_trailers,
                      uint32_t timeout_milliseconds, HttpCallCallback callback) {
    const std::string headers = serializePairs(request_headers);
    const std::string trailers = serializePairs(request_trailers);
    uint32_t token = 0;
    WasmResult result = proxy_http_call(uri.data(), uri.size(), headers.data(), headers.size(),
                                        request_body.data(), request_body.size(), trailers.data(),
                                        trailers.size(), timeout_milliseconds, &token);
    if (result == WasmResult::Ok) http_calls_[token] = std::move(callback);
    return result;
  }

  WasmResult grpcCall(std::string_view service, std::string_view service_name,
                      std::string_view method_name, const HeaderStringPairs& initial_metadata,
                      std::string_view request, uint32_t timeout_milliseconds, uint32_t* token) {
    const std::string metadata = serializePairs(initial_metadata);
    return proxy_grpc_call(service.data(), service.size(), service_name.data(), service_name.size(),
                           method_name.data(), method_name.size(), metadata.data(), metadata.size(),
                           request.data(), request.size(), timeout_milliseconds, token);
  }
  WasmResult grpcStream(std::string_view service, std::string_view service_name,
                        std::string_view method_name, const HeaderStringPairs& initial_metadata,
                        uint32_t* token) {
    const std::string metadata = serializePairs(initial_metadata);
    return proxy_grpc_stream(service.data(), service.size(), service_name.data(),
                             service_name.size(), method_name.data(), method_name.size(),
                             metadata.data(), metadata.size(), token);
  }
  WasmResult grpcSend(uint32_t token, std::string_view message, bool end_stream) {
    return proxy_grpc_send(token, message.data(), message.size(), end_stream ? 1 : 0);
  }
  WasmResult grpcCancel(uint32_t token) { return proxy_grpc_cancel(token); }
  WasmResult grpcClose(uint32_t token) { return proxy_grpc_close(token); }

  // Used by the exported callback; not for filters.
  void dispatchHttpCallResponse(uint32_t token, uint32_t headers, size_t body_size,
                                uint32_t trailers) {
    auto found = http_calls_.find(token);
    if (found == http_calls_.end()) return;
    HttpCallCallback callback = std::move(found->second);
    http_calls_.erase(found);
    if (callback) callback(headers, body_size, trailers);
  }

 private:
  std::string root_id_;
  std::unordered_map<uint32_t, HttpCallCallback> http_calls_;
};

class Context : public ContextBase {
 public:
  Context(uint32_t id, RootContext* root) : ContextBase(id), root_(root) {}

  RootContext* root() const { return root_; }
  Context* asContext() override { return this; }

  // HTTP filters.
  virtual FilterHeadersStatus onRequestHeaders(uint32_t /*headers*/, bool /*end_of_stream*/) {
    return FilterHeadersStatus::Continue;
  }
  virtual FilterDataStatus onRequestBody(size_t /*body_buffer_length*/, bool /*end_of_stream*/) {
    return FilterDataStatus::Continue;
  }
  virtual FilterTrailersStatus onRequestTrailers(uint32_t /*trailers*/) {
    return FilterTrailersStatus::Continue;
  }
  virtual FilterHeadersStatus onResponseHeaders(uint32_t /*headers*/, bool /*end_of_stream*/) {
    return FilterHeadersStatus::Continue;
  }
  virtual FilterDataStatus onResponseBody(size_t /*body_buffer_length*/, bool /*end_of_stream*/) {
    return FilterDataStatus::Continue;
  }
  virtual FilterTrailersStatus onResponseTrailers(uint32_t /*trailers*/) {
    return FilterTrailersStatus::Continue;
  }

  // TCP (network) filters.
  virtual FilterStatus onNewConnection() { return FilterStatus::Continue; }
  virtual FilterStatus onDownstreamData(size_t /*data_length*/, bool /*end_of_stream*/) {
    return FilterStatus::Continue;
  }
  virtual FilterStatus onUpstreamData(size_t /*data_length*/, bool /*end_of_stream*/) {
    return FilterStatus::Continue;
  }
  virtual void onDownstreamConnectionClose(PeerType /*peer*/) {}
  virtual void onUpstreamConnectionClose(PeerType /*peer*/) {}

  // The stream is finished (after onLog for HTTP in Envoy).
  virtual void onDone() {}

 private:
  RootContext* root_;
};

// ---- factories ------------------------------------------------------------------------------

using RootFactory = std::function<std::unique_ptr<RootContext>(uint32_t id, std::string_view root_id)>;
using ContextFactory = std::function<std::unique_ptr<Context>(uint32_t id, RootContext* root)>;

#define ROOT_FACTORY(RootClass)                                                        \
  [](uint32_t id, std::string_view root_id) -> std::unique_ptr<RootContext> {          \
    return std::make_unique<RootClass>(id, root_id);                                   \
  }
#define CONTEXT_FACTORY(ContextClass)                                                  \
  [](uint32_t id, RootContext* root) -> std::unique_ptr<Context> {                     \
    return std::make_unique<ContextClass>(id, root);                                   \
  }

namespace proxy_wasm_sdk {

struct Factories {
  RootFactory root;
  ContextFactory context;
};

// Function-local statics: safe to use from other static constructors.
inline std::unordered_map<std::string, Factories>& factories() {
  static std::unordered_map<std::string, Factories> registered;
  return registered;
}
inline std::unordered_map<uint32_t, std::unique_ptr<RootContext>>& rootContexts() {
  static std::unordered_map<uint32_t, std::unique_ptr<RootContext>> contexts;
  return contexts;
}
inline std::unordered_map<uint32_t, std::unique_ptr<Context>>& streamContexts() {
  static std::unordered_map<uint32_t, std::unique_ptr<Context>> contexts;
  return contexts;
}

}  // namespace proxy_wasm_sdk

// Register the factories for one root id ("" = any root id without its own).
struct RegisterContextFactory {
  RegisterContextFactory(ContextFactory context_factory, RootFactory root_factory,
                         std::string_view root_id = "") {
    proxy_wasm_sdk::factories()[std::string(root_id)] = {std::move(root_factory),
                                                         std::move(context_factory)};
  }
  explicit RegisterContextFactory(ContextFactory context_factory, std::string_view root_id = "")
      : RegisterContextFactory(std::move(context_factory), nullptr, root_id) {}
};

inline RootContext* getRootContext(uint32_t id) {
  auto& roots = proxy_wasm_sdk::rootContexts();
  auto found = roots.find(id);
  return found == roots.end() ? nullptr : found->second.get();
}
inline RootContext* getRootContext(std::string_view root_id) {
  for (auto& [id, root] : proxy_wasm_sdk::rootContexts()) {
    if (root->root_id() == root_id) return root.get();
  }
  return nullptr;
}
inline Context* getContext(uint32_t id) {
  auto& streams = proxy_wasm_sdk::streamContexts();
  auto found = streams.find(id);
  return found == streams.end() ? nullptr : found->second.get();
}
inline ContextBase* getContextBase(uint32_t id) {
  if (RootContext* root = getRootContext(id)) return root;
  return getContext(id);
}
