// proxy_wasm/proxy_wasm.h - wasmetool's header-only C++ SDK for Proxy-Wasm (ABI 0.2.1).
//
// Include this one header. It is written from the Proxy-Wasm ABI specification
// and builds with plain clang for wasm32-wasi (no Emscripten). Class and function
// names follow the official C++ SDK (RootContext, Context, RegisterContextFactory,
// onRequestHeaders, addResponseHeader, getRequestHeader, sendLocalResponse,
// LOG_INFO, ...), so a filter written against either SDK ports to the other.
//
//   abi.h      wire enumerations and the host functions (imports from "env")
//   api.h      WasmData and wrappers: logging, headers, bodies, properties,
//              local responses, shared data and queues, metrics, foreign calls
//   context.h  RootContext, Context, factories (RegisterContextFactory)
//   exports.h  the proxy_on_* callbacks the proxy calls, dispatching to contexts
#pragma once

#include "proxy_wasm/abi.h"
#include "proxy_wasm/api.h"
#include "proxy_wasm/context.h"
#include "proxy_wasm/exports.h"
