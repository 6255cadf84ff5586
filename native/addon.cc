// The N-API glue: the only file that includes Node headers. Argument validation with exact
// messages happens in TS (src/native/); this layer only converts and forwards.
#include <napi.h>

#include <atomic>

#include "arena.h"
#include "counters.h"
#include "cpu.h"
#include "exit.h"

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

// ---- Vcpu (owned by the vcpu engineer; configureMmu plumbing may be extended by mmu) ----

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
                        InstanceMethod<&VcpuWrap::ResetCounters>("resetCounters")});
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
    Napi::Object o = info[0].As<Napi::Object>();
    hv::MmuConfig cfg;
    cfg.ept = o.Get("ept").ToBoolean().Value();
    cfg.eptp = U64(o, "eptp");
    cfg.guest_base = U64(o, "guestBase");
    cfg.guest_size = U64(o, "guestSize");
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
  return exports;
}

}  // namespace

NODE_API_MODULE(hugevisor, Init)
