// The N-API glue: the only file that includes Node headers. Argument validation with exact
// messages happens in TS (src/native/); this layer only converts and forwards.
#include <napi.h>

#include "arena.h"
#include "counters.h"
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

Napi::Array Names(Napi::Env env, const char* const* names, uint32_t n) {
  Napi::Array a = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) a.Set(i, Napi::String::New(env, names[i]));
  return a;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Arena", ArenaWrap::Init(env));
  exports.Set("counterNames", Names(env, hv::kCounterNames, hv::C_COUNT));
  exports.Set("exitFieldNames", Names(env, hv::kExitFieldNames, hv::EF_COUNT));
  return exports;
}

}  // namespace

NODE_API_MODULE(hugevisor, Init)
