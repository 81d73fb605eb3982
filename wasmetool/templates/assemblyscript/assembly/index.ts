// {{NAME}}: a proxy-wasm HTTP filter in AssemblyScript, written with
// @gcoredev/proxy-wasm-sdk-as (the maintained fork of Kong's AssemblyScript SDK).
//
// It adds the response header "hello: <value>", where <value> is the plugin
// configuration (any string), or "world" when the configuration is empty, and
// logs every request at info level.

// The proxy_on_* callbacks the host calls, and the allocator it uses.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  log,
  LogLevelValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";

const DEFAULT_GREETING = "world";

// The root context lives as long as the plugin; the SDK stores the plugin
// configuration in it ("" when there is none) and asks it for one Context per
// HTTP request.
class HelloRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Hello(context_id, this);
  }

  greeting(): string {
    const configured = this.getConfiguration();
    return configured.length > 0 ? configured : DEFAULT_GREETING;
  }
}

// One request/response pair. Callbacks not overridden here continue unchanged.
class Hello extends Context {
  private readonly root: HelloRoot;

  constructor(context_id: u32, root: HelloRoot) {
    super(context_id, root);
    this.root = root;
  }

  onRequestHeaders(header_count: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const method = stream_context.headers.request.get(":method");
    const path = stream_context.headers.request.get(":path");
    log(LogLevelValues.info, "request " + method + " " + path);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(header_count: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("hello", this.root.greeting());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new HelloRoot(context_id), "{{ROOT_ID}}");
