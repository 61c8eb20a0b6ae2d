// mqkit::Error is the one exception type of the library: a std::system_error
// carrying an mqkit::errc (or the errno of a failed system/ZeroMQ call).
#pragma once

#include <string>
#include <system_error>

namespace mqkit {

enum class errc {
  ok = 0,
  truncated,            // a frame ends before the envelope does
  too_large,            // payload plus headers exceed the configured maximum
  wrong_type,           // an envelope field has the wrong msgpack type
  unsupported_version,  // MQKIT-ENVELOPE-VERSION: an envelope major version we do not know
  malformed,            // anything else that is not a valid envelope
  bad_endpoint,         // an endpoint cannot be bound or connected
  bad_argument,         // a value given by the caller is invalid
  timeout,              // an operation did not complete in its time
  unsupported,          // the operation is not available here
  stopped,              // a stop was requested while the operation waited
  in_use,               // another process owns the resource (a spool's lock)
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

class Error : public std::system_error {
 public:
  Error(errc code, const std::string& what)
      : std::system_error(make_error_code(code), what), message_(what) {}
  Error(std::error_code code, const std::string& what)
      : std::system_error(code, what), message_(what) {}
  // The message alone: it already says what is wrong and what to do.
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

}  // namespace mqkit

template <>
struct std::is_error_code_enum<mqkit::errc> : std::true_type {};
