// proxy_wasm/abi.h - the Proxy-Wasm ABI 0.2.1 as seen from a C++ module.
//
// Part of wasmetool's header-only C++ SDK, written from the Proxy-Wasm ABI
// specification. Names follow the official C++ SDK so filters port either way.
//
// This file holds the wire-level enumerations and the host functions the proxy
// provides (imported from the "env" module). Filters normally use the friendlier
// wrappers in proxy_wasm/api.h instead of calling these directly.
#pragma once

#include <cstddef>
#include <cstdint>

// ---- enumerations (values are fixed by the ABI) --------------------------------------------

// Status of every host call (proxy_status_t in the specification).
enum class WasmResult : uint32_t {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  BadExpression = 5,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  ResultMismatch = 9,
  InternalFailure = 10,
  BrokenConnection = 11,
  Unimplemented = 12,
};

inline const char* toString(WasmResult result) {
  switch (result) {
    case WasmResult::Ok: return "Ok";
    case WasmResult::NotFound: return "NotFound";
    case WasmResult::BadArgument: return "BadArgument";
    case WasmResult::SerializationFailure: return "SerializationFailure";
    case WasmResult::ParseFailure: return "ParseFailure";
    case WasmResult::BadExpression: return "BadExpression";
    case WasmResult::InvalidMemoryAccess: return "InvalidMemoryAccess";
    case WasmResult::Empty: return "Empty";
    case WasmResult::CasMismatch: return "CasMismatch";
    case WasmResult::ResultMismatch: return "ResultMismatch";
    case WasmResult::InternalFailure: return "InternalFailure";
    case WasmResult::BrokenConnection: return "BrokenConnection";
    case WasmResult::Unimplemented: return "Unimplemented";
  }
  return "Unknown";
}

enum class LogLevel : uint32_t { trace = 0, debug = 1, info = 2, warn = 3, error = 4, critical = 5 };

// What a header callback tells the proxy to do next. 1 (StopIteration) is
// treated by Envoy as StopAllIterationAndWatermark.
enum class FilterHeadersStatus : uint32_t {
  Continue = 0,
  StopIteration = 1,
  ContinueAndEndStream = 2,
  StopAllIterationAndBuffer = 3,
  StopAllIterationAndWatermark = 4,
};
enum class FilterDataStatus : uint32_t {
  Continue = 0,
  StopIterationAndBuffer = 1,
  StopIterationAndWatermark = 2,
  StopIterationNoBuffer = 3,
};
enum class FilterTrailersStatus : uint32_t { Continue = 0, StopIteration = 1 };
enum class FilterMetadataStatus : uint32_t { Continue = 0 };
enum class FilterStatus : uint32_t { Continue = 0, StopIteration = 1 };  // TCP filters

enum class WasmBufferType : uint32_t {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  NetworkDownstreamData = 2,
  NetworkUpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  CallData = 8,  // arguments of a foreign function call
};

enum class WasmHeaderMapType : uint32_t {
  RequestHeaders = 0,
  RequestTrailers = 1,
  ResponseHeaders = 2,
  ResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
};

enum class WasmStreamType : uint32_t { Request = 0, Response = 1, Downstream = 2, Upstream = 3 };
enum class PeerType : uint32_t { Unknown = 0, Local = 1, Remote = 2 };
enum class MetricType : uint32_t { Counter = 0, Gauge = 1, Histogram = 2 };

// gRPC status codes; InvalidCode means "not a gRPC reply" in sendLocalResponse.
enum class GrpcStatus : int32_t {
  Ok = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
  InvalidCode = -1,
};

// ---- host functions -------------------------------------------------------------------------
// Every function returns a WasmResult. Data the host returns (`uint8_t** ptr`,
// `size_t* size`) is allocated with this module's malloc; the caller frees it
// (the WasmData class below does that).

#define PROXY_WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

extern "C" {
// Logging, time, timers, contexts.
PROXY_WASM_IMPORT(proxy_log) WasmResult proxy_log(LogLevel level, const char* message, size_t size);
PROXY_WASM_IMPORT(proxy_get_log_level) WasmResult proxy_get_log_level(LogLevel* level);
PROXY_WASM_IMPORT(proxy_get_current_time_nanoseconds)
WasmResult proxy_get_current_time_nanoseconds(uint64_t* nanoseconds);
PROXY_WASM_IMPORT(proxy_set_tick_period_milliseconds)
WasmResult proxy_set_tick_period_milliseconds(uint32_t period_milliseconds);
PROXY_WASM_IMPORT(proxy_set_effective_context) WasmResult proxy_set_effective_context(uint32_t context_id);
PROXY_WASM_IMPORT(proxy_done) WasmResult proxy_done();
PROXY_WASM_IMPORT(proxy_get_status)
WasmResult proxy_get_status(uint32_t* code, const char** message, size_t* message_size);

// Properties (Envoy attributes such as request.path, plugin_root_id).
PROXY_WASM_IMPORT(proxy_get_property)
WasmResult proxy_get_property(const char* path, size_t path_size, const char** value, size_t* value_size);
PROXY_WASM_IMPORT(proxy_set_property)
WasmResult proxy_set_property(const char* path, size_t path_size, const char* value, size_t value_size);

// Buffers: bodies, connection data, configurations, call responses.
PROXY_WASM_IMPORT(proxy_get_buffer_bytes)
WasmResult proxy_get_buffer_bytes(WasmBufferType type, uint32_t start, uint32_t length,
                                  const char** data, size_t* size);
PROXY_WASM_IMPORT(proxy_get_buffer_status)
WasmResult proxy_get_buffer_status(WasmBufferType type, size_t* length, uint32_t* flags);
PROXY_WASM_IMPORT(proxy_set_buffer_bytes)
WasmResult proxy_set_buffer_bytes(WasmBufferType type, uint32_t start, uint32_t length,
                                  const char* data, size_t size);

// Header (and trailer / metadata) maps.
PROXY_WASM_IMPORT(proxy_get_header_map_size)
WasmResult proxy_get_header_map_size(WasmHeaderMapType type, size_t* size);
PROXY_WASM_IMPORT(proxy_get_header_map_pairs)
WasmResult proxy_get_header_map_pairs(WasmHeaderMapType type, const char** data, size_t* size);
PROXY_WASM_IMPORT(proxy_set_header_map_pairs)
WasmResult proxy_set_header_map_pairs(WasmHeaderMapType type, const char* data, size_t size);
PROXY_WASM_IMPORT(proxy_get_header_map_value)
WasmResult proxy_get_header_map_value(WasmHeaderMapType type, const char* key, size_t key_size,
                                      const char** value, size_t* value_size);
PROXY_WASM_IMPORT(proxy_add_header_map_value)
WasmResult proxy_add_header_map_value(WasmHeaderMapType type, const char* key, size_t key_size,
                                      const char* value, size_t value_size);
PROXY_WASM_IMPORT(proxy_replace_header_map_value)
WasmResult proxy_replace_header_map_value(WasmHeaderMapType type, const char* key, size_t key_size,
                                          const char* value, size_t value_size);
PROXY_WASM_IMPORT(proxy_remove_header_map_value)
WasmResult proxy_remove_header_map_value(WasmHeaderMapType type, const char* key, size_t key_size);

// Stream control.
PROXY_WASM_IMPORT(proxy_continue_stream) WasmResult proxy_continue_stream(WasmStreamType type);
PROXY_WASM_IMPORT(proxy_close_stream) WasmResult proxy_close_stream(WasmStreamType type);
PROXY_WASM_IMPORT(proxy_send_local_response)
WasmResult proxy_send_local_response(uint32_t response_code, const char* details, size_t details_size,
                                     const char* body, size_t body_size, const char* headers,
                                     size_t headers_size, GrpcStatus grpc_status);

// HTTP and gRPC callouts.
PROXY_WASM_IMPORT(proxy_http_call)
WasmResult proxy_http_call(const char* upstream, size_t upstream_size, const char* headers,
                           size_t headers_size, const char* body, size_t body_size,
                           const char* trailers, size_t trailers_size, uint32_t timeout_milliseconds,
                           uint32_t* token);
PROXY_WASM_IMPORT(proxy_grpc_call)
WasmResult proxy_grpc_call(const char* service, size_t service_size, const char* service_name,
                           size_t service_name_size, const char* method_name, size_t method_name_size,
                           const char* initial_metadata, size_t initial_metadata_size,
                           const char* request, size_t request_size, uint32_t timeout_milliseconds,
                           uint32_t* token);
PROXY_WASM_IMPORT(proxy_grpc_stream)
WasmResult proxy_grpc_stream(const char* service, size_t service_size, const char* service_name,
                             size_t service_name_size, const char* method_name,
                             size_t method_name_size, const char* initial_metadata,
                             size_t initial_metadata_size, uint32_t* token);
PROXY_WASM_IMPORT(proxy_grpc_send)
WasmResult proxy_grpc_send(uint32_t token, const char* message, size_t message_size, uint32_t end_stream);
PROXY_WASM_IMPORT(proxy_grpc_cancel) WasmResult proxy_grpc_cancel(uint32_t token);
PROXY_WASM_IMPORT(proxy_grpc_close) WasmResult proxy_grpc_close(uint32_t token);

// Shared data (key/value with compare-and-swap) and shared queues, per VM id.
PROXY_WASM_IMPORT(proxy_get_shared_data)
WasmResult proxy_get_shared_data(const char* key, size_t key_size, const char** value,
                                 size_t* value_size, uint32_t* cas);
PROXY_WASM_IMPORT(proxy_set_shared_data)
WasmResult proxy_set_shared_data(const char* key, size_t key_size, const char* value,
                                 size_t value_size, uint32_t cas);
PROXY_WASM_IMPORT(proxy_register_shared_queue)
WasmResult proxy_register_shared_queue(const char* queue_name, size_t queue_name_size, uint32_t* token);
PROXY_WASM_IMPORT(proxy_resolve_shared_queue)
WasmResult proxy_resolve_shared_queue(const char* vm_id, size_t vm_id_size, const char* queue_name,
                                      size_t queue_name_size, uint32_t* token);
PROXY_WASM_IMPORT(proxy_enqueue_shared_queue)
WasmResult proxy_enqueue_shared_queue(uint32_t token, const char* data, size_t data_size);
PROXY_WASM_IMPORT(proxy_dequeue_shared_queue)
WasmResult proxy_dequeue_shared_queue(uint32_t token, const char** data, size_t* data_size);

// Metrics (counters, gauges, histograms).
PROXY_WASM_IMPORT(proxy_define_metric)
WasmResult proxy_define_metric(MetricType type, const char* name, size_t name_size, uint32_t* metric_id);
PROXY_WASM_IMPORT(proxy_increment_metric) WasmResult proxy_increment_metric(uint32_t metric_id, int64_t offset);
PROXY_WASM_IMPORT(proxy_record_metric) WasmResult proxy_record_metric(uint32_t metric_id, uint64_t value);
PROXY_WASM_IMPORT(proxy_get_metric) WasmResult proxy_get_metric(uint32_t metric_id, uint64_t* value);

// Foreign functions offered by the host (Envoy: compress, set_envoy_filter_state, ...).
PROXY_WASM_IMPORT(proxy_call_foreign_function)
WasmResult proxy_call_foreign_function(const char* name, size_t name_size, const char* arguments,
                                       size_t arguments_size, char** results, size_t* results_size);
}  // extern "C"

#undef PROXY_WASM_IMPORT
