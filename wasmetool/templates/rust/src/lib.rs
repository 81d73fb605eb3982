//! {{NAME}}: a proxy-wasm HTTP filter.
//!
//! It adds the response header `hello: <value>`, where `<value>` is the plugin
//! configuration (the `configuration` field of Envoy's wasm filter, or the
//! `pluginConfig` of an Istio WasmPlugin). With no configuration the value is
//! `world`. Every request is logged at info level.

use std::rc::Rc;

use log::info;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// The value used when the plugin has no (or an empty) configuration.
const DEFAULT_VALUE: &str = "world";

// `main!` defines `_initialize`, which the proxy calls once when it loads the
// module. Register the logger and the factory for root contexts here.
proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_root_context_id| -> Box<dyn RootContext> {
        Box::new(HelloRoot {
            value: Rc::from(DEFAULT_VALUE),
        })
    });
}}

/// One root context exists per plugin (per root id) and per worker thread. It
/// reads the configuration and creates one `HelloFilter` per HTTP request.
struct HelloRoot {
    value: Rc<str>,
}

impl Context for HelloRoot {}

impl RootContext for HelloRoot {
    /// Called when the plugin is (re)configured. Returning `false` would make
    /// the proxy reject the configuration, so an empty one is simply accepted.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let configured = self
            .get_plugin_configuration()
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
            .unwrap_or_default();
        self.value = if configured.is_empty() {
            Rc::from(DEFAULT_VALUE)
        } else {
            Rc::from(configured.as_str())
        };
        info!("{{NAME}} configured: hello = {}", self.value);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HelloFilter {
            context_id,
            value: Rc::clone(&self.value),
        }))
    }
}

/// The per-request (stream) context.
struct HelloFilter {
    context_id: u32,
    value: Rc<str>,
}

impl Context for HelloFilter {}

impl HttpContext for HelloFilter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        info!("#{} {} {}", self.context_id, method, path);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.add_http_response_header("hello", &self.value);
        Action::Continue
    }
}
