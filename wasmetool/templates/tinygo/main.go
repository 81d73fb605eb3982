// {{NAME}}: a proxy-wasm HTTP filter written with the Go SDK
// (github.com/proxy-wasm/proxy-wasm-go-sdk), compiled by upstream Go as a WASI
// reactor: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared.
//
// It adds the response header "hello: <value>", where <value> is the plugin
// configuration (any string), or "world" when the configuration is empty, and
// logs every request at info level.
package main

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// defaultGreeting is used when the plugin has no configuration.
const defaultGreeting = "world"

// A reactor module has no work to do in main; init registers the filter.
func main() {}

func init() {
	// One plugin context per plugin configuration; it creates one HTTP context
	// per request.
	proxywasm.SetPluginContext(func(contextID uint32) types.PluginContext {
		return &pluginContext{greeting: defaultGreeting}
	})
}

// pluginContext holds what every request of this plugin shares: the greeting.
type pluginContext struct {
	types.DefaultPluginContext
	greeting string
}

// OnPluginStart runs when the plugin is (re)configured. configurationSize is 0
// when the plugin has no configuration: keep the default then.
func (p *pluginContext) OnPluginStart(configurationSize int) types.OnPluginStartStatus {
	if configurationSize == 0 {
		return types.OnPluginStartStatusOK
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("cannot read the plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if len(data) > 0 {
		p.greeting = string(data)
	}
	return types.OnPluginStartStatusOK
}

// NewHttpContext is called for every HTTP request.
func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{greeting: p.greeting}
}

// httpContext handles one request/response pair. DefaultHttpContext lets every
// callback we do not override continue unchanged.
type httpContext struct {
	types.DefaultHttpContext
	greeting string
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	method, _ := proxywasm.GetHttpRequestHeader(":method")
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	proxywasm.LogInfof("request %s %s", method, path)
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("hello", h.greeting); err != nil {
		proxywasm.LogErrorf("cannot add the hello header: %v", err)
	}
	return types.ActionContinue
}
