// The N-API glue: the only file that includes Node headers. Argument validation with exact
// messages happens in TS (src/native/); this layer only converts and forwards.
#include <napi.h>

#include <string>

#include "arena.h"
#include "counters.h"
#include "exit.h"
#include "mmu.h"
#include "walk_bench.h"

namespace {

using hv::Arena;

// The arena's bytes are exposed as one external ArrayBuffer. The buffer's finalizer owns the
// Arena, so the memory lives exactly as long as any JS view (or native holder) of it.
class ArenaWrap : public Napi::ObjectWrap<ArenaWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Arena",
                       {InstanceAccessor<&ArenaWrap::Buffer>("buffer"),
                        InstanceAccessor<&ArenaWrap::ByteLength>("byteLength"),
                        InstanceMethod<&ArenaWrap::Discard>("discard")});
  }

  ArenaWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ArenaWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "Arena(bytes): bytes must be a number").ThrowAsJavaScriptException();
      return;
    }
    const char* err = nullptr;
    arena_ = Arena::create(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()), &err);
    if (!arena_) {
      Napi::Error::New(env, err).ThrowAsJavaScriptException();
      return;
    }
    auto buf = Napi::ArrayBuffer::New(
        env, arena_->base(), arena_->size(), [](Napi::Env, void*, Arena* a) { delete a; }, arena_);
    buffer_ = Napi::Persistent(buf);
  }

  Arena* arena() const { return arena_; }

 private:
  Napi::Value Buffer(const Napi::CallbackInfo&) { return buffer_.Value(); }
  Napi::Value ByteLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(arena_ ? arena_->size() : 0));
  }
  Napi::Value Discard(const Napi::CallbackInfo& info) {
    uint64_t off = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    uint64_t len = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    return Napi::Boolean::New(info.Env(), arena_->discard(hv::Hpa(off), len));
  }

  Arena* arena_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

Napi::Array Names(Napi::Env env, const char* const* names, uint32_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) a.Set(i, Napi::String::New(env, names[i]));
  return a;
}

// ---- MMU glue: NativeMmuConfig <-> hv::MmuConfig, the default TLB geometry, the walk bench.

struct GeomField {
  const char* js;
  hv::TlbGeom hv::TlbGeometry::*member;
};
const GeomField kGeomFields[] = {
    {"itlb4k", &hv::TlbGeometry::itlb_4k},     {"itlb2m", &hv::TlbGeometry::itlb_2m},
    {"itlb1g", &hv::TlbGeometry::itlb_1g},     {"dtlb4k", &hv::TlbGeometry::dtlb_4k},
    {"dtlb2m", &hv::TlbGeometry::dtlb_2m},     {"dtlb1g", &hv::TlbGeometry::dtlb_1g},
    {"stlb", &hv::TlbGeometry::stlb},          {"stlb1g", &hv::TlbGeometry::stlb_1g},
    {"pwcPml4e", &hv::TlbGeometry::pwc_pml4e}, {"pwcPdpte", &hv::TlbGeometry::pwc_pdpte},
    {"pwcPde", &hv::TlbGeometry::pwc_pde},     {"nested", &hv::TlbGeometry::nested}};

Napi::Object GeometryToJs(Napi::Env env, const hv::TlbGeometry& g) {
  Napi::Object o = Napi::Object::New(env);
  for (const GeomField& f : kGeomFields) {
    Napi::Object a = Napi::Object::New(env);
    a.Set("entries", Napi::Number::New(env, (g.*f.member).entries));
    a.Set("ways", Napi::Number::New(env, (g.*f.member).ways));
    o.Set(f.js, a);
  }
  return o;
}

bool U32Field(Napi::Object o, const char* key, uint32_t* out, std::string* err, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    *err = where + "." + key + " must be a number";
    return false;
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 65536 && d == static_cast<double>(static_cast<uint32_t>(d)))) {
    *err = where + "." + key + " must be an integer in [0, 65536]";
    return false;
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

bool U64Field(Napi::Object o, const char* key, uint64_t* out, std::string* err) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsNumber() && !v.IsBigInt()) {
    *err = std::string(key) + " must be a number";
    return false;
  }
  if (v.IsBigInt()) {
    bool lossless = true;
    *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    return true;
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < 9007199254740992.0 && d == static_cast<double>(static_cast<uint64_t>(d)))) {
    *err = std::string(key) + " must be a non-negative integer";
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// NativeMmuConfig → hv::MmuConfig. Returns false with *err naming the field. Geometry fields
// that are absent keep their defaults; hv::Mmu::configure validates the geometry itself.
[[maybe_unused]] bool MmuConfigFromJs(Napi::Value v, hv::MmuConfig* cfg, std::string* err) {
  if (!v.IsObject()) {
    *err = "configureMmu(cfg): cfg must be an object";
    return false;
  }
  Napi::Object o = v.As<Napi::Object>();
  *cfg = hv::MmuConfig{};
  cfg->ept = o.Get("ept").ToBoolean().Value();
  if (!U64Field(o, "eptp", &cfg->eptp, err) || !U64Field(o, "guestBase", &cfg->guest_base, err) ||
      !U64Field(o, "guestSize", &cfg->guest_size, err))
    return false;
  Napi::Value t = o.Get("tlb");
  if (t.IsUndefined()) return true;
  if (!t.IsObject()) {
    *err = "tlb must be an object";
    return false;
  }
  Napi::Object to = t.As<Napi::Object>();
  for (const GeomField& f : kGeomFields) {
    Napi::Value a = to.Get(f.js);
    if (a.IsUndefined()) continue;
    const std::string where = std::string("tlb.") + f.js;
    if (!a.IsObject()) {
      *err = where + " must be an object { entries, ways }";
      return false;
    }
    hv::TlbGeom g;
    if (!U32Field(a.As<Napi::Object>(), "entries", &g.entries, err, where) ||
        !U32Field(a.As<Napi::Object>(), "ways", &g.ways, err, where))
      return false;
    cfg->tlb.*f.member = g;
  }
  return true;
}

// walkBench(kind, n): runs n translations of one WalkBenchKind in C++ (bench/walk.ts).
Napi::Value WalkBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  o.Set("walks", Napi::Number::New(env, static_cast<double>(r.walks)));
  o.Set("refs", Napi::Number::New(env, static_cast<double>(r.refs)));
  o.Set("hits", Napi::Number::New(env, static_cast<double>(r.hits)));
  return o;
}

void InitMmu(Napi::Env env, Napi::Object exports) {
  exports.Set("defaultTlbGeometry", GeometryToJs(env, hv::TlbGeometry{}));
  exports.Set("walkBench", Napi::Function::New(env, WalkBench, "walkBench"));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Arena", ArenaWrap::Init(env));
  exports.Set("counterNames", Names(env, hv::kCounterNames, hv::C_COUNT));
  exports.Set("exitFieldNames", Names(env, hv::kExitFieldNames, hv::EF_COUNT));
  InitMmu(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(hugevisor, Init)
