// Error and Result<T>: the one way errors travel through vessel.
//
// An Error carries an errno-style code (0 when not from a syscall) and a
// message built outermost-first: each layer prefixes what it was doing, so a
// message reads "create c1: mount /proc: Operation not permitted".
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vessel {

class Error {
 public:
  Error(int code, std::string message) : code_(code), message_(std::move(message)) {}

  // An error from a failed syscall: `what` plus strerror(errno).
  static Error from_errno(std::string_view what);
  static Error from_errno(int err, std::string_view what);
  // An error with no errno: bad input, a failed check.
  static Error invalid(std::string message) { return Error(EINVAL, std::move(message)); }

  // Prefixes `what` to the message ("what: message").
  // Returns by value: `auto&& e = make().context(...)` must not dangle.
  Error context(std::string_view what) && {
    message_.insert(0, std::string(what) + ": ");
    return std::move(*this);
  }

  int code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  int code_;
  std::string message_;
};

// Either a value or an Error. Modelled on std::expected (absent from g++ 12).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  explicit operator bool() const { return v_.index() == 0; }
  bool ok() const { return v_.index() == 0; }
  T& operator*() & { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  // On error, prefixes `what` to the message; a value passes through. Returns by
  // value so that TRY(f().context(...)) binds a prvalue, never a dead temporary.
  Result context(std::string_view what) && {
    if (!ok()) std::get<1>(v_) = std::move(std::get<1>(v_)).context(what);
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT

  explicit operator bool() const { return !e_; }
  bool ok() const { return !e_; }
  void operator*() const {}
  const Error& error() const& { return *e_; }
  Error&& error() && { return std::move(*e_); }

  Result context(std::string_view what) && {
    if (e_) e_ = std::move(*e_).context(what);
    return std::move(*this);
  }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

// A successful Result<void>.
inline Status ok() { return {}; }

}  // namespace vessel

// Evaluates a Result expression; on error returns the error from the caller,
// otherwise yields the value (GNU statement expression, as g++ and clang allow).
#define TRY(expr)                                          \
  ({                                                       \
    auto&& vessel_try_r_ = (expr);                         \
    if (!vessel_try_r_) return std::move(vessel_try_r_).error(); \
    *std::move(vessel_try_r_);                             \
  })

// Like TRY, adding `what` (a string) as context on error.
#define TRYC(expr, what)                                   \
  ({                                                       \
    auto&& vessel_try_r_ = (expr);                         \
    if (!vessel_try_r_) return std::move(std::move(vessel_try_r_).error()).context(what); \
    *std::move(vessel_try_r_);                             \
  })
