// N-API glue of the bench addon (hugevisor_bench.node): test and benchmark entry points that
// must not ship in the production addon (native/addon.cc). Loaded by loadBenchAddon()
// (src/native/addon.ts) for bench/walk.ts and test/mmu-addon.test.ts.
#include <napi.h>

#include "walk_bench.h"

namespace {

// walkBench(kind, n): runs n translations of one WalkBenchKind in C++ (bench/walk.ts).
Napi::Value WalkBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "walkBench(kind, n): kind and n must be numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t kind = info[0].As<Napi::Number>().Uint32Value();
  const double n = info[1].As<Napi::Number>().DoubleValue();
  if (kind >= hv::kWalkBenchKinds || !(n >= 1 && n <= 1e10)) {
    Napi::RangeError::New(env, "walkBench(kind, n): unknown kind or n out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const hv::WalkBenchResult r = hv::run_walk_bench(static_cast<hv::WalkBenchKind>(kind), static_cast<uint64_t>(n));
  if (r.error) {
    Napi::Error::New(env, r.error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("ns", Napi::Number::New(env, static_cast<double>(r.ns)));
  o.Set("cpuNs", Napi::Number::New(env, static_cast<double>(r.cpu_ns)));
  o.Set("walks", Napi::Number::New(env, static_cast<double>(r.walks)));
  o.Set("refs", Napi::Number::New(env, static_cast<double>(r.refs)));
  o.Set("hits", Napi::Number::New(env, static_cast<double>(r.hits)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("walkBench", Napi::Function::New(env, WalkBench, "walkBench"));
  return exports;
}

}  // namespace

NODE_API_MODULE(hugevisor_bench, Init)
