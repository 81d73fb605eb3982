// {{NAME}}: a proxy-wasm HTTP filter written in C++.
//
// It adds the response header `hello: <value>`, where <value> is the plugin
// configuration (the `configuration` of Envoy's wasm filter, or the
// `pluginConfig` of an Istio WasmPlugin), and `world` when there is none.
// Every request is logged at info level.
#include <string>
#include <string_view>

#include "proxy_wasm/proxy_wasm.h"

namespace {

constexpr std::string_view kDefaultValue = "world";

// Trim spaces and newlines around the configuration text.
std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// One root context per plugin and worker: it holds the configured value.
class HelloRootContext : public RootContext {
 public:
  HelloRootContext(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}

  // Called when the plugin is (re)configured. An empty configuration is fine:
  // the value falls back to "world". Returning false would reject the config.
  bool onConfigure(size_t configuration_size) override {
    value_ = std::string(kDefaultValue);
    if (configuration_size > 0) {
      auto configuration = getBufferBytes(WasmBufferType::PluginConfiguration, 0, configuration_size);
      const std::string_view configured = trim(configuration->view());
      if (!configured.empty()) value_ = std::string(configured);
    }
    LOG_INFO("{{NAME}} configured: hello = " + value_);
    return true;
  }

  const std::string& value() const { return value_; }

 private:
  std::string value_{kDefaultValue};
};

// One context per HTTP request.
class HelloContext : public Context {
 public:
  HelloContext(uint32_t id, RootContext* root)
      : Context(id, root), root_(static_cast<HelloRootContext*>(root)) {}

  FilterHeadersStatus onRequestHeaders(uint32_t /*headers*/, bool /*end_of_stream*/) override {
    const auto method = getRequestHeader(":method");
    const auto path = getRequestHeader(":path");
    LOG_INFO("#" + std::to_string(id()) + " " + method->toString() + " " + path->toString());
    return FilterHeadersStatus::Continue;
  }

  FilterHeadersStatus onResponseHeaders(uint32_t /*headers*/, bool /*end_of_stream*/) override {
    addResponseHeader("hello", root_->value());
    return FilterHeadersStatus::Continue;
  }

 private:
  HelloRootContext* root_;
};

// Tell the SDK which classes to create for the root id "{{ROOT_ID}}" (the
// root_id / pluginName of the plugin configuration). As this module registers
// only one filter, the SDK also uses it for any other root id.
RegisterContextFactory register_hello(CONTEXT_FACTORY(HelloContext), ROOT_FACTORY(HelloRootContext),
                                      "{{ROOT_ID}}");

}  // namespace
