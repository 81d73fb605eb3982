// proxy_wasm_intrinsics.h - the official C++ SDK's header name, for filters
// ported from it: `#include "proxy_wasm_intrinsics.h"` keeps working.
#pragma once

#include "proxy_wasm/proxy_wasm.h"
