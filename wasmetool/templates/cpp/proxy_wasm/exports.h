// proxy_wasm/exports.h - the module's exports: the functions the proxy calls.
//
// Part of wasmetool's header-only C++ SDK. Each export finds the context the
// proxy names and calls the matching virtual method of RootContext / Context.
// The functions are `inline` and marked `used`, so every translation unit that
// includes the SDK emits them and the linker keeps exactly one copy.
#pragma once

#include "proxy_wasm/context.h"

#define PROXY_WASM_EXPORT(name) __attribute__((used, export_name(#name)))

namespace proxy_wasm_sdk {

inline std::string pluginRootId() {
  std::string root_id;
  getValue({"plugin_root_id"}, &root_id);
  return root_id;
}

// The factories registered for `root_id`; else those registered for "" (any
// root id); else, when the module registers exactly one set, that one - so a
// single-filter module works whatever root id the proxy configuration uses,
// as with the Rust and Go SDKs.
inline const Factories* factoriesFor(std::string_view root_id) {
  auto& registered = factories();
  auto found = registered.find(std::string(root_id));
  if (found == registered.end()) found = registered.find("");
  if (found == registered.end() && registered.size() == 1) found = registered.begin();
  return found == registered.end() ? nullptr : &found->second;
}

inline void createRootContext(uint32_t id) {
  const std::string root_id = pluginRootId();
  const Factories* factory = factoriesFor(root_id);
  std::unique_ptr<RootContext> root;
  if (factory != nullptr && factory->root) root = factory->root(id, root_id);
  if (!root) root = std::make_unique<RootContext>(id, root_id);
  RootContext* created = root.get();
  rootContexts()[id] = std::move(root);
  created->onCreate();
}

inline void createStreamContext(uint32_t id, uint32_t root_context_id) {
  RootContext* root = getRootContext(root_context_id);
  if (root == nullptr) {
    logError("proxy_on_context_create: unknown root context " + std::to_string(root_context_id));
    return;
  }
  const Factories* factory = factoriesFor(root->root_id());
  std::unique_ptr<Context> context;
  if (factory != nullptr && factory->context) context = factory->context(id, root);
  if (!context) context = std::make_unique<Context>(id, root);
  Context* created = context.get();
  streamContexts()[id] = std::move(context);
  created->onCreate();
}

}  // namespace proxy_wasm_sdk

extern "C" {

// Marks the ABI version this module speaks; the proxy never calls it.
PROXY_WASM_EXPORT(proxy_abi_version_0_2_1) inline void proxy_abi_version_0_2_1() {}

// Memory the host writes returned data into (Envoy looks for `malloc` first;
// wasmetool's builder exports libc's malloc too).
PROXY_WASM_EXPORT(proxy_on_memory_allocate) inline void* proxy_on_memory_allocate(size_t size) {
  return ::malloc(size);
}

// ---- lifecycle ------------------------------------------------------------------------------

PROXY_WASM_EXPORT(proxy_on_context_create)
inline void proxy_on_context_create(uint32_t context_id, uint32_t parent_context_id) {
  if (parent_context_id == 0) {
    proxy_wasm_sdk::createRootContext(context_id);
  } else {
    proxy_wasm_sdk::createStreamContext(context_id, parent_context_id);
  }
}

PROXY_WASM_EXPORT(proxy_on_vm_start)
inline uint32_t proxy_on_vm_start(uint32_t root_context_id, uint32_t vm_configuration_size) {
  RootContext* root = getRootContext(root_context_id);
  return root == nullptr || root->onStart(vm_configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_validate_configuration)
inline uint32_t proxy_validate_configuration(uint32_t root_context_id, uint32_t configuration_size) {
  RootContext* root = getRootContext(root_context_id);
  return root == nullptr || root->validateConfiguration(configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_configure)
inline uint32_t proxy_on_configure(uint32_t root_context_id, uint32_t configuration_size) {
  RootContext* root = getRootContext(root_context_id);
  return root == nullptr || root->onConfigure(configuration_size) ? 1 : 0;
}

PROXY_WASM_EXPORT(proxy_on_tick) inline void proxy_on_tick(uint32_t root_context_id) {
  if (RootContext* root = getRootContext(root_context_id)) root->onTick();
}

PROXY_WASM_EXPORT(proxy_on_queue_ready)
inline void proxy_on_queue_ready(uint32_t root_context_id, uint32_t token) {
  if (RootContext* root = getRootContext(root_context_id)) root->onQueueReady(token);
}

PROXY_WASM_EXPORT(proxy_on_foreign_function)
inline void proxy_on_foreign_function(uint32_t root_context_id, uint32_t function_id,
                                      uint32_t arguments_size) {
  if (RootContext* root = getRootContext(root_context_id)) {
    root->onForeignFunction(function_id, arguments_size);
  }
}

PROXY_WASM_EXPORT(proxy_on_done) inline uint32_t proxy_on_done(uint32_t context_id) {
  if (RootContext* root = getRootContext(context_id)) return root->onDone() ? 1 : 0;
  if (Context* context = getContext(context_id)) context->onDone();
  return 1;
}

PROXY_WASM_EXPORT(proxy_on_log) inline void proxy_on_log(uint32_t context_id) {
  if (ContextBase* context = getContextBase(context_id)) context->onLog();
}

PROXY_WASM_EXPORT(proxy_on_delete) inline void proxy_on_delete(uint32_t context_id) {
  if (ContextBase* context = getContextBase(context_id)) context->onDelete();
  if (proxy_wasm_sdk::streamContexts().erase(context_id) == 0) {
    proxy_wasm_sdk::rootContexts().erase(context_id);
  }
}

// ---- HTTP streams ---------------------------------------------------------------------------

#define PROXY_WASM_STREAM_CALL(default_value, call)                     \
  Context* context = getContext(context_id);                            \
  return context == nullptr ? static_cast<uint32_t>(default_value)      \
                            : static_cast<uint32_t>(context->call)

PROXY_WASM_EXPORT(proxy_on_request_headers)
inline uint32_t proxy_on_request_headers(uint32_t context_id, uint32_t headers, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterHeadersStatus::Continue, onRequestHeaders(headers, end_of_stream != 0));
}
PROXY_WASM_EXPORT(proxy_on_request_body)
inline uint32_t proxy_on_request_body(uint32_t context_id, uint32_t body_size, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterDataStatus::Continue, onRequestBody(body_size, end_of_stream != 0));
}
PROXY_WASM_EXPORT(proxy_on_request_trailers)
inline uint32_t proxy_on_request_trailers(uint32_t context_id, uint32_t trailers) {
  PROXY_WASM_STREAM_CALL(FilterTrailersStatus::Continue, onRequestTrailers(trailers));
}
PROXY_WASM_EXPORT(proxy_on_response_headers)
inline uint32_t proxy_on_response_headers(uint32_t context_id, uint32_t headers, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterHeadersStatus::Continue, onResponseHeaders(headers, end_of_stream != 0));
}
PROXY_WASM_EXPORT(proxy_on_response_body)
inline uint32_t proxy_on_response_body(uint32_t context_id, uint32_t body_size, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterDataStatus::Continue, onResponseBody(body_size, end_of_stream != 0));
}
PROXY_WASM_EXPORT(proxy_on_response_trailers)
inline uint32_t proxy_on_response_trailers(uint32_t context_id, uint32_t trailers) {
  PROXY_WASM_STREAM_CALL(FilterTrailersStatus::Continue, onResponseTrailers(trailers));
}

// ---- TCP connections ------------------------------------------------------------------------

PROXY_WASM_EXPORT(proxy_on_new_connection)
inline uint32_t proxy_on_new_connection(uint32_t context_id) {
  PROXY_WASM_STREAM_CALL(FilterStatus::Continue, onNewConnection());
}
PROXY_WASM_EXPORT(proxy_on_downstream_data)
inline uint32_t proxy_on_downstream_data(uint32_t context_id, uint32_t data_size, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterStatus::Continue, onDownstreamData(data_size, end_of_stream != 0));
}
PROXY_WASM_EXPORT(proxy_on_upstream_data)
inline uint32_t proxy_on_upstream_data(uint32_t context_id, uint32_t data_size, uint32_t end_of_stream) {
  PROXY_WASM_STREAM_CALL(FilterStatus::Continue, onUpstreamData(data_size, end_of_stream != 0));
}
#undef PROXY_WASM_STREAM_CALL

PROXY_WASM_EXPORT(proxy_on_downstream_connection_close)
inline void proxy_on_downstream_connection_close(uint32_t context_id, uint32_t peer_type) {
  if (Context* context = getContext(context_id)) {
    context->onDownstreamConnectionClose(static_cast<PeerType>(peer_type));
  }
}
PROXY_WASM_EXPORT(proxy_on_upstream_connection_close)
inline void proxy_on_upstream_connection_close(uint32_t context_id, uint32_t peer_type) {
  if (Context* context = getContext(context_id)) {
    context->onUpstreamConnectionClose(static_cast<PeerType>(peer_type));
  }
}

// ---- callouts -------------------------------------------------------------------------------

PROXY_WASM_EXPORT(proxy_on_http_call_response)
inline void proxy_on_http_call_response(uint32_t root_context_id, uint32_t token, uint32_t headers,
                                        uint32_t body_size, uint32_t trailers) {
  if (RootContext* root = getRootContext(root_context_id)) {
    root->dispatchHttpCallResponse(token, headers, body_size, trailers);
  }
}

PROXY_WASM_EXPORT(proxy_on_grpc_receive_initial_metadata)
inline void proxy_on_grpc_receive_initial_metadata(uint32_t root_context_id, uint32_t token,
                                                   uint32_t headers) {
  if (RootContext* root = getRootContext(root_context_id)) {
    root->onGrpcReceiveInitialMetadata(token, headers);
  }
}
PROXY_WASM_EXPORT(proxy_on_grpc_receive)
inline void proxy_on_grpc_receive(uint32_t root_context_id, uint32_t token, uint32_t body_size) {
  if (RootContext* root = getRootContext(root_context_id)) root->onGrpcReceive(token, body_size);
}
PROXY_WASM_EXPORT(proxy_on_grpc_receive_trailing_metadata)
inline void proxy_on_grpc_receive_trailing_metadata(uint32_t root_context_id, uint32_t token,
                                                    uint32_t trailers) {
  if (RootContext* root = getRootContext(root_context_id)) {
    root->onGrpcReceiveTrailingMetadata(token, trailers);
  }
}
PROXY_WASM_EXPORT(proxy_on_grpc_close)
inline void proxy_on_grpc_close(uint32_t root_context_id, uint32_t token, uint32_t status_code) {
  if (RootContext* root = getRootContext(root_context_id)) {
    root->onGrpcClose(token, static_cast<GrpcStatus>(status_code));
  }
}

}  // extern "C"

#undef PROXY_WASM_EXPORT
