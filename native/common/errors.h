// Typed errors thrown by the kernels; the binding maps them to JS errors with a stable `code`.
#pragma once
#include <stdexcept>
#include <string>

namespace cmsae {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw Error(code, message); }

inline void require(bool ok, const char* code, const std::string& message) {
  if (!ok) fail(code, message);
}

}  // namespace cmsae
