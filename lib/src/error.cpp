// The error category behind mqkit::errc.
#include "mqkit/error.hpp"

namespace mqkit {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "mqkit"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::ok:
        return "ok";
      case errc::truncated:
        return "truncated envelope";
      case errc::too_large:
        return "message too large";
      case errc::wrong_type:
        return "envelope field of the wrong type";
      case errc::unsupported_version:
        return "MQKIT-ENVELOPE-VERSION: unsupported envelope version";
      case errc::malformed:
        return "malformed envelope";
      case errc::bad_endpoint:
        return "bad endpoint";
      case errc::bad_argument:
        return "bad argument";
      case errc::timeout:
        return "timed out";
      case errc::unsupported:
        return "unsupported";
      case errc::in_use:
        return "in use by another process";
      case errc::stopped:
        return "stopped";
    }
    return "unknown mqkit error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace mqkit
