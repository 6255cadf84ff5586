// The N-API glue of the production addon (hugevisor.node): the only core file that includes
// Node headers. Argument validation with exact messages happens in TS (src/native/); this
// layer only converts and forwards. Test and benchmark entry points live in the bench addon
// (native/bench/bench_addon.cc), not here.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "arena.h"
#include "counters.h"
#include "cpu.h"
#include "exit.h"
#include "mmu.h"

namespace {

using hv::Arena;

// Who frees the Arena: the wrapper object and every external ArrayBuffer over its bytes each
// hold one reference; the last to go deletes it, so the bytes live exactly as long as any JS
// view of them and are freed exactly once. Finalizers run on the JS thread (no atomics).
struct ArenaOwner {
  Arena* arena;
  uint32_t refs;
  void release() {
    if (--refs == 0) {
      delete arena;
      delete this;
    }
  }
};

// The arena's bytes are exposed to JS as `chunks`: external ArrayBuffers of Arena::kChunkSize
// bytes (the last may be shorter), because Node 20 refuses external ArrayBuffers above 2^32
// bytes. `buffer` (the whole arena as one ArrayBuffer) exists only for arenas <= 4 GiB.
class ArenaWrap : public Napi::ObjectWrap<ArenaWrap> {
 public:
  static constexpr uint64_t kMaxSingleBuffer = 1ull << 32;

  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Arena",
                       {InstanceAccessor<&ArenaWrap::Buffer>("buffer"),
                        InstanceAccessor<&ArenaWrap::Chunks>("chunks"),
                        InstanceAccessor<&ArenaWrap::ChunkSize>("chunkSize"),
                        InstanceAccessor<&ArenaWrap::ByteLength>("byteLength"),
                        InstanceMethod<&ArenaWrap::Discard>("discard")});
  }

  ArenaWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ArenaWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "Arena(bytes): bytes must be a number").ThrowAsJavaScriptException();
      return;
    }
    // Range-check the double itself: a negative, fractional, NaN or huge value must not wrap
    // into some other uint64 size.
    const double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d > 0) || d > static_cast<double>(Arena::kMaxBytes) || d != static_cast<double>(static_cast<uint64_t>(d))) {
      Napi::RangeError::New(env, "Arena(bytes): bytes must be an integer in (0, 1 TiB]").ThrowAsJavaScriptException();
      return;
    }
    const char* err = nullptr;
    Arena* a = Arena::create(static_cast<uint64_t>(d), &err);
    if (!a) {
      Napi::Error::New(env, err).ThrowAsJavaScriptException();
      return;
    }
    owner_ = new ArenaOwner{a, 1};  // the wrapper's own reference, dropped in ~ArenaWrap
    const uint64_t n = (a->size() + Arena::kChunkSize - 1) >> Arena::kChunkShift;
    Napi::Array chunks = Napi::Array::New(env, n);
    for (uint64_t i = 0; i < n; i++) {
      const uint64_t off = i << Arena::kChunkShift;
      napi_value buf = External(env, off, std::min(Arena::kChunkSize, a->size() - off));
      if (!buf) return;  // exception pending
      chunks.Set(static_cast<uint32_t>(i), buf);
    }
    chunks.Freeze();  // a fixed list: TS code indexes it by offset >> chunkShift
    chunks_ = Napi::Persistent(chunks);
  }
  ~ArenaWrap() override {
    if (owner_) owner_->release();
  }

  Arena* arena() const { return owner_ ? owner_->arena : nullptr; }

 private:
  static void Finalize(napi_env, void*, void* hint) { static_cast<ArenaOwner*>(hint)->release(); }

  // One external ArrayBuffer over [off, off + len) holding a reference to the owner, or
  // nullptr with a JS exception pending. The reference is taken before the call and only
  // ever dropped by the finalizer: Node runs the finalizer itself when creation fails
  // (node::Buffer::New does, above its length limit), which is what double-freed when the
  // failure path also freed the Arena. A Node that did not would leak, never double-free.
  napi_value External(Napi::Env env, uint64_t off, uint64_t len) {
    napi_value v = nullptr;
    owner_->refs++;
    napi_status st = napi_create_external_arraybuffer(env, owner_->arena->base() + off, len, Finalize, owner_, &v);
    if (st != napi_ok) {
      if (!env.IsExceptionPending())
        Napi::Error::New(env, "Arena: could not create an ArrayBuffer over the arena").ThrowAsJavaScriptException();
      return nullptr;
    }
    return v;
  }

  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!owner_) return env.Undefined();
    if (buffer_.IsEmpty()) {
      if (owner_->arena->size() > kMaxSingleBuffer) {
        Napi::RangeError::New(env, "Arena.buffer: an arena larger than 4 GiB has no single ArrayBuffer; use arena.chunks")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      napi_value buf = External(env, 0, owner_->arena->size());
      if (!buf) return env.Undefined();
      buffer_ = Napi::Persistent(Napi::ArrayBuffer(env, buf));
    }
    return buffer_.Value();
  }
  Napi::Value Chunks(const Napi::CallbackInfo& info) {
    return chunks_.IsEmpty() ? info.Env().Undefined() : chunks_.Value();
  }
  Napi::Value ChunkSize(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Arena::kChunkSize));
  }
  Napi::Value ByteLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(owner_ ? owner_->arena->size() : 0));
  }
  Napi::Value Discard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!owner_ || info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) return Napi::Boolean::New(env, false);
    const double o = info[0].As<Napi::Number>().DoubleValue(), l = info[1].As<Napi::Number>().DoubleValue();
    if (!(o >= 0) || !(l >= 0) || o > 1.8e19 || l > 1.8e19) return Napi::Boolean::New(env, false);
    return Napi::Boolean::New(env, owner_->arena->discard(hv::Hpa(static_cast<uint64_t>(o)), static_cast<uint64_t>(l)));
  }

  ArenaOwner* owner_ = nullptr;
  Napi::Reference<Napi::Array> chunks_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

// ---- MMU glue: NativeMmuConfig <-> hv::MmuConfig, the default TLB geometry. Structure
// names and order come from HV_TLB_STRUCTURES (native/mmu.h).

Napi::Object GeometryToJs(Napi::Env env, const hv::TlbGeometry& g) {
  Napi::Object o = Napi::Object::New(env);
  for (unsigned s = 0; s < hv::TLB_COUNT; ++s) {
    const hv::TlbGeom& geom = g[hv::TlbStructure(s)];
    Napi::Object a = Napi::Object::New(env);
    a.Set("entries", Napi::Number::New(env, geom.entries));
    a.Set("ways", Napi::Number::New(env, geom.ways));
    o.Set(hv::kTlbStructureNames[s], a);
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
bool MmuConfigFromJs(Napi::Value v, hv::MmuConfig* cfg, std::string* err) {
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
  for (unsigned s = 0; s < hv::TLB_COUNT; ++s) {
    const char* name = hv::kTlbStructureNames[s];
    Napi::Value a = to.Get(name);
    if (a.IsUndefined()) continue;
    const std::string where = std::string("tlb.") + name;
    if (!a.IsObject()) {
      *err = where + " must be an object { entries, ways }";
      return false;
    }
    hv::TlbGeom g;
    if (!U32Field(a.As<Napi::Object>(), "entries", &g.entries, err, where) ||
        !U32Field(a.As<Napi::Object>(), "ways", &g.ways, err, where))
      return false;
    cfg->tlb[hv::TlbStructure(s)] = g;
  }
  return true;
}

// ---- Vcpu: registers, counters and the exit record as shared views; run, configureMmu,
// flushes and MMIO completion forward to hv::Cpu. ----

// The Cpu outlives its JS wrapper as long as any of its three external buffers (regs,
// counters, exit) is alive: one reference for the wrapper, one per buffer.
struct CpuHolder {
  hv::Cpu* cpu;
  std::atomic<int> refs;
  void unref() {
    if (--refs == 0) {
      delete cpu;
      delete this;
    }
  }
};

struct AddonData {
  Napi::FunctionReference arena_ctor;
};

class VcpuWrap : public Napi::ObjectWrap<VcpuWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Vcpu",
                       {InstanceAccessor<&VcpuWrap::Regs>("regs"),
                        InstanceAccessor<&VcpuWrap::CountersView>("counters"),
                        InstanceAccessor<&VcpuWrap::Exit>("exit"),
                        InstanceMethod<&VcpuWrap::ConfigureMmu>("configureMmu"),
                        InstanceMethod<&VcpuWrap::Run>("run"),
                        InstanceMethod<&VcpuWrap::Invept>("invept"),
                        InstanceMethod<&VcpuWrap::FlushTlb>("flushTlb"),
                        InstanceMethod<&VcpuWrap::ResetCounters>("resetCounters"),
                        InstanceMethod<&VcpuWrap::CompleteMmio>("completeMmio"),
                        InstanceMethod<&VcpuWrap::Release>("release")});
  }

  VcpuWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VcpuWrap>(info) {
    Napi::Env env = info.Env();
    AddonData* data = env.GetInstanceData<AddonData>();
    if (info.Length() < 1 || !info[0].IsObject() ||
        !info[0].As<Napi::Object>().InstanceOf(data->arena_ctor.Value())) {
      Napi::TypeError::New(env, "Vcpu(arena): arena must be an Arena").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object arena_obj = info[0].As<Napi::Object>();
    ArenaWrap* aw = Napi::ObjectWrap<ArenaWrap>::Unwrap(arena_obj);
    if (!aw || !aw->arena()) {
      Napi::Error::New(env, "Vcpu(arena): the arena was not created").ThrowAsJavaScriptException();
      return;
    }
    arena_ref_ = Napi::Persistent(arena_obj);  // keeps the arena's bytes alive
    holder_ = new CpuHolder{new hv::Cpu(aw->arena()), {1}};
    regs_ = Napi::Persistent(View(env, holder_->cpu->regs(), hv::R_COUNT));
    counters_ = Napi::Persistent(View(env, holder_->cpu->counters(), hv::C_COUNT));
    exit_ = Napi::Persistent(View(env, holder_->cpu->exit_record(), hv::EF_COUNT));
  }
  ~VcpuWrap() override {
    if (holder_) holder_->unref();
  }

 private:
  Napi::BigUint64Array View(Napi::Env env, uint64_t* p, size_t n) {
    holder_->refs++;
    auto buf = Napi::ArrayBuffer::New(env, p, n * 8, [](Napi::Env, void*, CpuHolder* h) { h->unref(); }, holder_);
    return Napi::BigUint64Array::New(env, n, buf, 0);
  }
  Napi::Value Regs(const Napi::CallbackInfo&) { return regs_.Value(); }
  Napi::Value CountersView(const Napi::CallbackInfo&) { return counters_.Value(); }
  Napi::Value Exit(const Napi::CallbackInfo&) { return exit_.Value(); }

  static uint64_t U64(Napi::Object o, const char* key) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? static_cast<uint64_t>(v.As<Napi::Number>().Int64Value()) : 0;
  }
  Napi::Value ConfigureMmu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "configureMmu(cfg): cfg must be an object").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    hv::MmuConfig cfg;
    std::string msg;
    if (!MmuConfigFromJs(info[0], &cfg, &msg)) {
      Napi::TypeError::New(env, "configureMmu(cfg): " + msg).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (const char* err = holder_->cpu->configure_mmu(cfg)) Napi::Error::New(env, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber() || !(info[0].As<Napi::Number>().DoubleValue() >= 0)) {
      Napi::TypeError::New(env, "run(maxInstructions): maxInstructions must be a number >= 0").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const double d = info[0].As<Napi::Number>().DoubleValue();
    const uint64_t max = d >= 1.8e19 ? ~0ull : static_cast<uint64_t>(d);
    return Napi::Number::New(env, static_cast<double>(holder_->cpu->run(max)));
  }
  Napi::Value Invept(const Napi::CallbackInfo& info) {
    holder_->cpu->invept();
    return info.Env().Undefined();
  }
  Napi::Value FlushTlb(const Napi::CallbackInfo& info) {
    holder_->cpu->flush_tlb();
    return info.Env().Undefined();
  }
  Napi::Value ResetCounters(const Napi::CallbackInfo& info) {
    holder_->cpu->reset_counters();
    return info.Env().Undefined();
  }

  // completeMmio(gpa): from now on data accesses to gpa's 4 KiB page outside guest memory
  // (no EPT mapping in EPT mode) read all-ones and drop writes (cpu.h, complete_mmio).
  Napi::Value CompleteMmio(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool lossless = true;
    uint64_t gpa = 0;
    if (info.Length() >= 1 && info[0].IsBigInt()) gpa = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
    else if (info.Length() >= 1 && info[0].IsNumber() && info[0].As<Napi::Number>().DoubleValue() >= 0) gpa = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
    else lossless = false;
    if (!lossless) {
      Napi::TypeError::New(env, "completeMmio(gpa): gpa must be a non-negative number or bigint below 2^64").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    holder_->cpu->complete_mmio(gpa);
    return env.Undefined();
  }  // release(): free the vCPU's large buffers now instead of at garbage collection (Vm.close).
  Napi::Value Release(const Napi::CallbackInfo& info) {
    holder_->cpu->release();
    return info.Env().Undefined();
  }


  CpuHolder* holder_ = nullptr;
  Napi::ObjectReference arena_ref_;
  Napi::Reference<Napi::BigUint64Array> regs_, counters_, exit_;
};

Napi::Array Names(Napi::Env env, const char* const* names, uint32_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) a.Set(i, Napi::String::New(env, names[i]));
  return a;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function arena_ctor = ArenaWrap::Init(env);
  auto* data = new AddonData{Napi::Persistent(arena_ctor)};
  env.SetInstanceData<AddonData>(data);
  exports.Set("Arena", arena_ctor);
  exports.Set("Vcpu", VcpuWrap::Init(env));
  exports.Set("regNames", Names(env, hv::kRegNames, hv::R_COUNT));
  exports.Set("counterNames", Names(env, hv::kCounterNames, hv::C_COUNT));
  exports.Set("exitFieldNames", Names(env, hv::kExitFieldNames, hv::EF_COUNT));
  exports.Set("exitReasonNames", Names(env, hv::kExitReasonNames, hv::EXIT_REASON_COUNT));
  exports.Set("accessNames", Names(env, hv::kAccessNames, hv::kAccessCount));
  exports.Set("tlbStructures", Names(env, hv::kTlbStructureNames, hv::TLB_COUNT));
  exports.Set("defaultTlbGeometry", GeometryToJs(env, hv::TlbGeometry{}));
  return exports;
}

}  // namespace

NODE_API_MODULE(hugevisor, Init)
