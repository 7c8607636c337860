// Argument helpers: typed-array views with dtype and length checks, option readers.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "js_errors.h"

namespace cmsae::binding {

template <class Array>
struct TypedArrayKind;
template <>
struct TypedArrayKind<Napi::Float32Array> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "a Float32Array";
};
template <>
struct TypedArrayKind<Napi::Int32Array> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "an Int32Array";
};
template <>
struct TypedArrayKind<Napi::Uint8Array> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "a Uint8Array";
};
template <>
struct TypedArrayKind<Napi::Float64Array> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "a Float64Array";
};

// v as a typed array of the given kind with at least min_len elements, else ERR_DTYPE / ERR_SHAPE.
template <class Array>
Array typed_arg(const Napi::Env& env, const Napi::Value& v, const char* name, size_t min_len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TypedArrayKind<Array>::type)
    throw_js(env, "ERR_DTYPE", std::string(name) + " must be " + TypedArrayKind<Array>::name);
  Array a = v.As<Array>();
  if (a.ElementLength() < min_len)
    throw_js(env, "ERR_SHAPE", std::string(name) + " has " + std::to_string(a.ElementLength()) +
                                   " elements but at least " + std::to_string(min_len) + " are needed");
  return a;
}

inline Napi::Float32Array float32_arg(const Napi::Env& env, const Napi::Value& v, const char* name, size_t min_len) {
  return typed_arg<Napi::Float32Array>(env, v, name, min_len);
}
inline Napi::Int32Array int32_arg(const Napi::Env& env, const Napi::Value& v, const char* name, size_t min_len) {
  return typed_arg<Napi::Int32Array>(env, v, name, min_len);
}
inline Napi::Float64Array float64_arg(const Napi::Env& env, const Napi::Value& v, const char* name, size_t min_len) {
  return typed_arg<Napi::Float64Array>(env, v, name, min_len);
}

inline double number_arg(const Napi::Env& env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw_js(env, "ERR_ARG", std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline long long count_arg(const Napi::Env& env, const Napi::Value& v, const char* name, long long min_value) {
  double x = number_arg(env, v, name);
  if (!(x >= static_cast<double>(min_value)) || x != static_cast<double>(static_cast<long long>(x)) || x > 9.0e15)
    throw_js(env, "ERR_ARG", std::string(name) + " must be an integer >= " + std::to_string(min_value));
  return static_cast<long long>(x);
}

inline double opt_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw_js(o.Env(), "ERR_ARG", std::string("option ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline bool opt_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw_js(o.Env(), "ERR_ARG", std::string("option ") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// A new typed array (A: Napi::Int32Array, Float32Array, ...) holding a copy of src.
template <class T, class A>
A copy_out(Napi::Env env, const std::vector<T>& src) {
  A a = A::New(env, src.size());
  if (!src.empty()) std::memcpy(a.Data(), src.data(), src.size() * sizeof(T));
  return a;
}

}  // namespace cmsae::binding
