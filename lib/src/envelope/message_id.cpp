// UUIDv7 generation: 48 bits of Unix milliseconds, 12 bits of a per-thread
// sequence (rand_a) and 62 random bits chosen once per thread (rand_b). When a
// thread makes more than 4096 ids in one millisecond the timestamp is advanced
// logically, so ids from one thread are strictly increasing.
#include "mqkit/message_id.hpp"

#include <pthread.h>
#include <sys/random.h>

#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <atomic>
#include <chrono>
#include <cstring>

namespace mqkit {
namespace {

// A fork()ed child inherits its parent's per-thread random bits: it would
// make the parent's ids. Each fork moves this on, and a thread reseeds when
// its state was seeded in another generation.
std::atomic<std::uint32_t> fork_generation{1};
void count_fork_in_child() noexcept {
  fork_generation.fetch_add(1, std::memory_order_relaxed);
}
[[maybe_unused]] const int fork_handler_registered =
    ::pthread_atfork(nullptr, nullptr, count_fork_in_child);

// Trivially constructible, so a thread_local of it needs no init guard on
// the hot path; generation 0 means "not seeded yet".
struct ThreadIdState {
  std::uint32_t generation;  // fork_generation when random_bits were chosen
  std::uint64_t last_ms;
  std::uint32_t sequence;
  std::uint64_t random_bits;
  std::uint64_t clock_read_at;  // cycle counter when the clock was last read
  std::uint64_t clock_ms;       // what it said
};

std::uint64_t seed_random_bits(const void* salt) noexcept {
  std::uint64_t bits = 0;
  // getrandom never fails for 8 bytes once the pool is ready; fall back to
  // the clock and the state's address, which still differ per thread.
  if (getrandom(&bits, sizeof bits, 0) != sizeof bits)
    bits = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           reinterpret_cast<std::uintptr_t>(salt);
  return bits | 1;  // never 0, so it reads as seeded
}

std::uint64_t now_unix_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

void store_big_endian(std::uint8_t* out, std::uint64_t v) noexcept {
  v = __builtin_bswap64(v);
  std::memcpy(out, &v, sizeof v);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool is_dash_position(std::size_t i) {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

}  // namespace

// The wall clock costs about as much as the rest of a small send, so a
// thread reads it again only when the cycle counter says up to ~50 us may
// have passed (100,000 cycles is under 1 ms on any CPU above 100 MHz): ids
// keep millisecond accuracy at a fraction of the cost.
std::uint64_t cached_unix_ms(ThreadIdState& state) noexcept {
#if defined(__x86_64__)
  const std::uint64_t cycles = __rdtsc();
  if (cycles - state.clock_read_at < 100'000 && cycles >= state.clock_read_at)
    return state.clock_ms;
  state.clock_read_at = cycles;
  state.clock_ms = now_unix_ms();
  return state.clock_ms;
#else
  (void)state;
  return now_unix_ms();
#endif
}

MessageId MessageId::generate() noexcept {
  thread_local ThreadIdState state{};
  if (const auto generation = fork_generation.load(std::memory_order_relaxed);
      state.generation != generation) {
    state.generation = generation;
    state.random_bits = seed_random_bits(&state);
  }
  const std::uint64_t ms = cached_unix_ms(state);
  if (ms > state.last_ms) {
    state.last_ms = ms;
    state.sequence = 0;
  } else if (++state.sequence > 0xfff) {
    ++state.last_ms;  // sequence exhausted: borrow the next millisecond
    state.sequence = 0;
  }
  // 48 bits ms | version 7 | 12 bits sequence, then variant 10 | 62 random bits.
  std::array<std::uint8_t, kSize> b;
  store_big_endian(b.data(), state.last_ms << 16 | 0x7000 | state.sequence);
  store_big_endian(b.data() + 8,
                   (state.random_bits & 0x3fffffffffffffffULL) | 0x8000000000000000ULL);
  return MessageId(b);
}

std::optional<MessageId> MessageId::parse(std::string_view text) noexcept {
  if (text.size() != kTextSize) return std::nullopt;
  std::array<std::uint8_t, kSize> b{};
  std::size_t out = 0;
  for (std::size_t i = 0; i < kTextSize;) {
    if (is_dash_position(i)) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    b[out++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return MessageId(b);
}

std::string MessageId::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(kTextSize);
  for (std::size_t i = 0; i < kSize; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes_[i] >> 4]);
    s.push_back(kHex[bytes_[i] & 0xf]);
  }
  return s;
}

std::uint64_t MessageId::unix_ms() const noexcept {
  std::uint64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = ms << 8 | bytes_[i];
  return ms;
}

}  // namespace mqkit
