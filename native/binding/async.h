// A Promise-returning AsyncWorker: runs `work` on a libuv pool thread (never touching N-API there),
// keeps the given JS values alive until it settles, and maps kernel errors to coded JS errors.
#pragma once
#include <napi.h>

#include <functional>
#include <new>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "js_errors.h"

namespace cmsae::binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Finally = std::function<void()>;

  PromiseWorker(Napi::Env env, Work work, Done done, Finally finally, const std::vector<Napi::Value>& pins)
      : Napi::AsyncWorker(env, "cmsae"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), finally_(std::move(finally)) {
    for (const Napi::Value& v : pins)
      if (v.IsObject()) pins_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const cmsae::Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "ERR_NOMEM";
      SetError("out of memory: use smaller batches or a smaller model");
    } catch (const std::exception& e) {
      code_ = "ERR_INTERNAL";
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (finally_) finally_();
    try {
      deferred_.Resolve(done_ ? done_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (finally_) finally_();
    deferred_.Reject(make_error(Env(), code_.empty() ? "ERR_INTERNAL" : code_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally finally_;
  std::vector<Napi::ObjectReference> pins_;
  std::string code_;
};

// Runs fn on the JS thread, converting kernel exceptions into coded JS errors.
template <class Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const cmsae::Error& e) {
    throw make_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(env, "ERR_NOMEM", "out of memory: use smaller batches or a smaller model");
  }
}

}  // namespace cmsae::binding
