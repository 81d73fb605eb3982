// proxy_wasm/api.h - convenient wrappers around the host functions of abi.h.
//
// Part of wasmetool's header-only C++ SDK. Everything here may be called from
// any context callback; calls act on the context the proxy is currently calling
// (or the one selected with setEffectiveContext).
#pragma once

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "proxy_wasm/abi.h"

// ---- data returned by the host --------------------------------------------------------------

using HeaderStringPairs = std::vector<std::pair<std::string, std::string>>;

// Bytes handed over by the host. The host allocated them with our malloc; this
// object owns them and frees them when it goes away.
class WasmData {
 public:
  WasmData(const char* data, size_t size) : data_(data), size_(size) {}
  WasmData(const WasmData&) = delete;
  WasmData& operator=(const WasmData&) = delete;
  ~WasmData() { ::free(const_cast<char*>(data_)); }

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {data_ == nullptr ? "" : data_, size_}; }
  std::string toString() const { return std::string(view()); }

  // Decode the ABI's map serialisation: u32 count, count x (u32 key size,
  // u32 value size), then each key and value followed by a NUL byte.
  // Malformed input decodes to an empty list.
  std::vector<std::pair<std::string_view, std::string_view>> pairs() const;

  // Decode the 8-byte / 1-byte little-endian encodings Envoy uses for property values.
  template <typename T>
  bool value(T* out) const;

 private:
  const char* data_;
  size_t size_;
};
using WasmDataPtr = std::unique_ptr<WasmData>;

inline std::vector<std::pair<std::string_view, std::string_view>> WasmData::pairs() const {
  std::vector<std::pair<std::string_view, std::string_view>> result;
  if (data_ == nullptr || size_ < sizeof(uint32_t)) return result;
  auto read_u32 = [this](size_t offset) {
    uint32_t value;
    std::memcpy(&value, data_ + offset, sizeof(value));
    return value;
  };
  const uint32_t count = read_u32(0);
  size_t sizes = sizeof(uint32_t);
  size_t strings = sizes + static_cast<size_t>(count) * 2 * sizeof(uint32_t);
  if (strings > size_) return result;
  result.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t key_size = read_u32(sizes);
    const size_t value_size = read_u32(sizes + sizeof(uint32_t));
    sizes += 2 * sizeof(uint32_t);
    if (strings + key_size + 1 + value_size + 1 > size_) return {};
    std::string_view key(data_ + strings, key_size);
    strings += key_size + 1;
    std::string_view value(data_ + strings, value_size);
    strings += value_size + 1;
    result.emplace_back(key, value);
  }
  return result;
}

template <typename T>
bool WasmData::value(T* out) const {
  if constexpr (std::is_same_v<T, std::string>) {
    *out = toString();
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (size_ != 1) return false;
    *out = data_[0] != 0;
    return true;
  } else {
    static_assert(sizeof(T) == 8, "properties are strings, bools or 8-byte numbers");
    if (size_ != sizeof(T)) return false;
    std::memcpy(out, data_, sizeof(T));
    return true;
  }
}

// Encode pairs in the ABI's map serialisation (see WasmData::pairs).
inline std::string serializePairs(const HeaderStringPairs& pairs) {
  auto put_u32 = [](std::string& out, uint32_t value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  };
  std::string out;
  put_u32(out, static_cast<uint32_t>(pairs.size()));
  for (const auto& [key, value] : pairs) {
    put_u32(out, static_cast<uint32_t>(key.size()));
    put_u32(out, static_cast<uint32_t>(value.size()));
  }
  for (const auto& [key, value] : pairs) {
    out.append(key).push_back('\0');
    out.append(value).push_back('\0');
  }
  return out;
}

// ---- logging --------------------------------------------------------------------------------

inline WasmResult logMessage(LogLevel level, std::string_view message) {
  return proxy_log(level, message.data(), message.size());
}
inline void logTrace(std::string_view message) { logMessage(LogLevel::trace, message); }
inline void logDebug(std::string_view message) { logMessage(LogLevel::debug, message); }
inline void logInfo(std::string_view message) { logMessage(LogLevel::info, message); }
inline void logWarn(std::string_view message) { logMessage(LogLevel::warn, message); }
inline void logError(std::string_view message) { logMessage(LogLevel::error, message); }
inline void logCritical(std::string_view message) { logMessage(LogLevel::critical, message); }

// LOG_INFO("text " + value): the message is only built when the proxy logs at that level.
inline LogLevel currentLogLevel() {
  LogLevel level = LogLevel::trace;
  if (proxy_get_log_level(&level) != WasmResult::Ok) return LogLevel::trace;
  return level;
}
#define PROXY_WASM_LOG(level, message)                                  \
  do {                                                                  \
    if (static_cast<uint32_t>(currentLogLevel()) <= static_cast<uint32_t>(level)) \
      logMessage(level, (message));                                     \
  } while (0)
#define LOG_TRACE(message) PROXY_WASM_LOG(LogLevel::trace, message)
#define LOG_DEBUG(message) PROXY_WASM_LOG(LogLevel::debug, message)
#define LOG_INFO(message) PROXY_WASM_LOG(LogLevel::info, message)
#define LOG_WARN(message) PROXY_WASM_LOG(LogLevel::warn, message)
#define LOG_ERROR(message) PROXY_WASM_LOG(LogLevel::error, message)
#define LOG_CRITICAL(message) PROXY_WASM_LOG(LogLevel::critical, message)

// ---- time, status, tick ---------------------------------------------------------------------

inline uint64_t getCurrentTimeNanoseconds() {
  uint64_t now = 0;
  proxy_get_current_time_nanoseconds(&now);
  return now;
}

// The status of the last gRPC/HTTP callout (e.g. code 11 "reset" after a failed http call).
inline WasmResult getStatus(uint32_t* code, std::string* message) {
  const char* data = nullptr;
  size_t size = 0;
  WasmResult result = proxy_get_status(code, &data, &size);
  if (result == WasmResult::Ok && message != nullptr) *message = WasmData(data, size).toString();
  else ::free(const_cast<char*>(data));
  return result;
}

// ---- buffers --------------------------------------------------------------------------------

inline WasmDataPtr getBufferBytes(WasmBufferType type, size_t start, size_t length) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_buffer_bytes(type, static_cast<uint32_t>(start), static_cast<uint32_t>(length),
                             &data, &size) != WasmResult::Ok) {
    return std::make_unique<WasmData>(nullptr, 0);
  }
  return std::make_unique<WasmData>(data, size);
}

inline WasmResult getBufferStatus(WasmBufferType type, size_t* size, uint32_t* flags) {
  return proxy_get_buffer_status(type, size, flags);
}

// start=0,length=0 prepends; start=0,length>=size replaces; start>=size appends.
inline WasmResult setBuffer(WasmBufferType type, size_t start, size_t length, std::string_view data) {
  return proxy_set_buffer_bytes(type, static_cast<uint32_t>(start), static_cast<uint32_t>(length),
                                data.data(), data.size());
}

// ---- header maps ----------------------------------------------------------------------------

inline WasmResult addHeaderMapValue(WasmHeaderMapType type, std::string_view key, std::string_view value) {
  return proxy_add_header_map_value(type, key.data(), key.size(), value.data(), value.size());
}
inline WasmResult replaceHeaderMapValue(WasmHeaderMapType type, std::string_view key,
                                        std::string_view value) {
  return proxy_replace_header_map_value(type, key.data(), key.size(), value.data(), value.size());
}
inline WasmResult removeHeaderMapValue(WasmHeaderMapType type, std::string_view key) {
  return proxy_remove_header_map_value(type, key.data(), key.size());
}
// The first value of `key`; empty data when absent.
inline WasmDataPtr getHeaderMapValue(WasmHeaderMapType type, std::string_view key) {
  const char* value = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_value(type, key.data(), key.size(), &value, &size) != WasmResult::Ok) {
    return std::make_unique<WasmData>(nullptr, 0);
  }
  return std::make_unique<WasmData>(value, size);
}
inline WasmDataPtr getHeaderMapPairs(WasmHeaderMapType type) {
  const char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_pairs(type, &data, &size) != WasmResult::Ok) {
    return std::make_unique<WasmData>(nullptr, 0);
  }
  return std::make_unique<WasmData>(data, size);
}
inline WasmResult setHeaderMapPairs(WasmHeaderMapType type, const HeaderStringPairs& pairs) {
  const std::string data = serializePairs(pairs);
  return proxy_set_header_map_pairs(type, data.data(), data.size());
}
inline WasmResult getHeaderMapSize(WasmHeaderMapType type, size_t* size) {
  return proxy_get_header_map_size(type, size);
}

// Named shorthands: addRequestHeader, getResponseTrailer, ...
#define PROXY_WASM_HEADER_FUNCTIONS(Name, MapType)                                            \
  inline WasmResult add##Name(std::string_view key, std::string_view value) {                 \
    return addHeaderMapValue(WasmHeaderMapType::MapType, key, value);                         \
  }                                                                                           \
  inline WasmResult replace##Name(std::string_view key, std::string_view value) {             \
    return replaceHeaderMapValue(WasmHeaderMapType::MapType, key, value);                     \
  }                                                                                           \
  inline WasmResult remove##Name(std::string_view key) {                                      \
    return removeHeaderMapValue(WasmHeaderMapType::MapType, key);                             \
  }                                                                                           \
  inline WasmDataPtr get##Name(std::string_view key) {                                        \
    return getHeaderMapValue(WasmHeaderMapType::MapType, key);                                \
  }                                                                                           \
  inline WasmDataPtr get##Name##Pairs() { return getHeaderMapPairs(WasmHeaderMapType::MapType); } \
  inline WasmResult set##Name##Pairs(const HeaderStringPairs& pairs) {                        \
    return setHeaderMapPairs(WasmHeaderMapType::MapType, pairs);                              \
  }                                                                                           \
  inline WasmResult get##Name##Size(size_t* size) {                                           \
    return getHeaderMapSize(WasmHeaderMapType::MapType, size);                                \
  }
PROXY_WASM_HEADER_FUNCTIONS(RequestHeader, RequestHeaders)
PROXY_WASM_HEADER_FUNCTIONS(RequestTrailer, RequestTrailers)
PROXY_WASM_HEADER_FUNCTIONS(ResponseHeader, ResponseHeaders)
PROXY_WASM_HEADER_FUNCTIONS(ResponseTrailer, ResponseTrailers)
#undef PROXY_WASM_HEADER_FUNCTIONS

// ---- stream control -------------------------------------------------------------------------

inline WasmResult continueRequest() { return proxy_continue_stream(WasmStreamType::Request); }
inline WasmResult continueResponse() { return proxy_continue_stream(WasmStreamType::Response); }
inline WasmResult continueDownstream() { return proxy_continue_stream(WasmStreamType::Downstream); }
inline WasmResult continueUpstream() { return proxy_continue_stream(WasmStreamType::Upstream); }
inline WasmResult closeRequest() { return proxy_close_stream(WasmStreamType::Request); }
inline WasmResult closeResponse() { return proxy_close_stream(WasmStreamType::Response); }
inline WasmResult closeDownstream() { return proxy_close_stream(WasmStreamType::Downstream); }
inline WasmResult closeUpstream() { return proxy_close_stream(WasmStreamType::Upstream); }

// Answer the request from the filter; the upstream is never contacted. Return
// FilterHeadersStatus::StopIteration from the callback that calls this.
inline WasmResult sendLocalResponse(uint32_t response_code, std::string_view response_code_details,
                                    std::string_view body,
                                    const HeaderStringPairs& additional_response_headers,
                                    GrpcStatus grpc_status = GrpcStatus::InvalidCode) {
  const std::string headers = serializePairs(additional_response_headers);
  return proxy_send_local_response(response_code, response_code_details.data(),
                                   response_code_details.size(), body.data(), body.size(),
                                   headers.data(), headers.size(), grpc_status);
}

// ---- properties -----------------------------------------------------------------------------

// A property path's segments are joined with NUL bytes (no trailing NUL).
inline std::string propertyPath(std::initializer_list<std::string_view> parts) {
  std::string path;
  for (std::string_view part : parts) {
    if (!path.empty()) path.push_back('\0');
    path.append(part);
  }
  return path;
}

// getProperty({"request", "path"}); nullopt when the proxy has no such property.
inline std::optional<WasmDataPtr> getProperty(std::initializer_list<std::string_view> parts) {
  const std::string path = propertyPath(parts);
  const char* value = nullptr;
  size_t size = 0;
  if (proxy_get_property(path.data(), path.size(), &value, &size) != WasmResult::Ok) {
    return std::nullopt;
  }
  return std::make_unique<WasmData>(value, size);
}

// getValue({"response", "code"}, &code) for std::string, bool, int64_t, uint64_t or double.
template <typename T>
inline bool getValue(std::initializer_list<std::string_view> parts, T* out) {
  auto data = getProperty(parts);
  return data.has_value() && (*data)->value(out);
}

inline WasmResult setProperty(std::string_view path, std::string_view value) {
  return proxy_set_property(path.data(), path.size(), value.data(), value.size());
}

// ---- shared data and queues -----------------------------------------------------------------

// cas: pass the value returned by getSharedData to update only if nobody wrote in
// between (else CasMismatch); 0 writes unconditionally.
inline WasmResult setSharedData(std::string_view key, std::string_view value, uint32_t cas = 0) {
  return proxy_set_shared_data(key.data(), key.size(), value.data(), value.size(), cas);
}
inline WasmResult getSharedData(std::string_view key, WasmDataPtr* value, uint32_t* cas = nullptr) {
  const char* data = nullptr;
  size_t size = 0;
  uint32_t dummy_cas = 0;
  WasmResult result = proxy_get_shared_data(key.data(), key.size(), &data, &size,
                                            cas != nullptr ? cas : &dummy_cas);
  if (result == WasmResult::Ok) *value = std::make_unique<WasmData>(data, size);
  return result;
}
inline WasmDataPtr getSharedDataValue(std::string_view key, uint32_t* cas = nullptr) {
  WasmDataPtr value;
  if (getSharedData(key, &value, cas) != WasmResult::Ok) return std::make_unique<WasmData>(nullptr, 0);
  return value;
}

inline WasmResult registerSharedQueue(std::string_view queue_name, uint32_t* token) {
  return proxy_register_shared_queue(queue_name.data(), queue_name.size(), token);
}
inline WasmResult resolveSharedQueue(std::string_view vm_id, std::string_view queue_name,
                                     uint32_t* token) {
  return proxy_resolve_shared_queue(vm_id.data(), vm_id.size(), queue_name.data(),
                                    queue_name.size(), token);
}
inline WasmResult enqueueSharedQueue(uint32_t token, std::string_view data) {
  return proxy_enqueue_shared_queue(token, data.data(), data.size());
}
// Empty (7) when there is nothing queued.
inline WasmResult dequeueSharedQueue(uint32_t token, WasmDataPtr* data) {
  const char* bytes = nullptr;
  size_t size = 0;
  WasmResult result = proxy_dequeue_shared_queue(token, &bytes, &size);
  if (result == WasmResult::Ok) *data = std::make_unique<WasmData>(bytes, size);
  return result;
}

// ---- metrics --------------------------------------------------------------------------------

inline WasmResult defineMetric(MetricType type, std::string_view name, uint32_t* metric_id) {
  return proxy_define_metric(type, name.data(), name.size(), metric_id);
}
inline WasmResult incrementMetric(uint32_t metric_id, int64_t offset) {
  return proxy_increment_metric(metric_id, offset);
}
inline WasmResult recordMetric(uint32_t metric_id, uint64_t value) {
  return proxy_record_metric(metric_id, value);
}
inline WasmResult getMetric(uint32_t metric_id, uint64_t* value) {
  return proxy_get_metric(metric_id, value);
}

// ---- foreign functions ----------------------------------------------------------------------

inline WasmResult callForeignFunction(std::string_view name, std::string_view arguments,
                                      WasmDataPtr* results) {
  char* data = nullptr;
  size_t size = 0;
  WasmResult result = proxy_call_foreign_function(name.data(), name.size(), arguments.data(),
                                                  arguments.size(), &data, &size);
  if (result == WasmResult::Ok && results != nullptr) *results = std::make_unique<WasmData>(data, size);
  else ::free(data);
  return result;
}
