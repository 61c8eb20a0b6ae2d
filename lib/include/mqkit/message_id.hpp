// MessageId: the 128-bit, time-ordered id of every message (a UUIDv7, RFC 9562).
// Its one text form is the canonical lowercase UUID, e.g.
// 0192f0c4-6e1a-7c3d-9a4b-1f2e3d4c5b6a, used in CLI output, environment
// variables, file names and `dlq show ID`.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mqkit {

class MessageId {
 public:
  static constexpr std::size_t kSize = 16;
  static constexpr std::size_t kTextSize = 36;

  constexpr MessageId() = default;
  explicit constexpr MessageId(const std::array<std::uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // A fresh id: 48-bit Unix milliseconds, then a per-thread counter and random
  // bits, so ids from one thread sort in creation order and ids from different
  // threads, processes or hosts do not collide. Thread-safe, does not allocate.
  static MessageId generate() noexcept;

  // Parses the canonical text form (case-insensitive); empty on anything else.
  [[nodiscard]] static std::optional<MessageId> parse(std::string_view text) noexcept;

  std::string to_string() const;
  // Milliseconds since the Unix epoch (UTC) encoded in the id.
  std::uint64_t unix_ms() const noexcept;
  bool is_nil() const noexcept { return bytes_ == std::array<std::uint8_t, kSize>{}; }
  const std::array<std::uint8_t, kSize>& bytes() const noexcept { return bytes_; }

  friend constexpr auto operator<=>(const MessageId&, const MessageId&) = default;

 private:
  std::array<std::uint8_t, kSize> bytes_{};
};

}  // namespace mqkit

// Ids as keys of unordered containers: both halves, read as two words (a
// byte loop cost the proxy ~5 % of its instructions), mixed (splitmix64).
template <>
struct std::hash<mqkit::MessageId> {
  std::size_t operator()(const mqkit::MessageId& id) const noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, id.bytes().data(), 8);
    std::memcpy(&b, id.bytes().data() + 8, 8);
    std::uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull);
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return static_cast<std::size_t>(h ^ (h >> 31));
  }
};
