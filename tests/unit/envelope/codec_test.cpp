// The envelope codec: round trips, raw frames, and every kind of bad input.
#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <random>

#include "envelope/codec.hpp"
#include "mqkit/envelope.hpp"
#include "mqkit/error.hpp"

using mqkit::errc;

namespace {

// A frame with a hand-built field map, for inputs our encoder never makes.
std::string frame_with_fields(const std::function<void(msgpack::packer<msgpack::sbuffer>&)>& fields,
                              std::uint8_t major = 1, std::string_view payload = "body") {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  fields(pk);
  std::string frame = std::string("topic") + '\0' + "\xA3MQK";
  frame.push_back(static_cast<char>(major));
  frame.push_back(0);
  frame.append(b.data(), b.size());
  frame.append(payload);
  return frame;
}

void pack_id(msgpack::packer<msgpack::sbuffer>& pk) {
  pk.pack(1);
  pk.pack_bin(16);
  pk.pack_bin_body("0123456789abcdef", 16);
}

}  // namespace

TEST_CASE("an envelope survives encode and decode", "[envelope]") {
  auto e = mqkit::Envelope::make("order.created");
  std::string payload = "{\"order\":42}";
  SECTION("without headers") {}
  SECTION("with headers, key and a later attempt") {
    e.headers = {{"content-type", "application/json"}, {"trace", "abc"}};
    e.key = "customer-7";
    e.attempt = 300;
  }
  SECTION("with an empty topic and a binary payload") {
    e.topic.clear();
    payload = std::string("\0\xff\x01MQK", 6);
  }
  const auto m = mqkit::decode(mqkit::encode(e, payload));
  CHECK(m.id() == e.id);
  CHECK(m.topic() == e.topic);
  CHECK(m.envelope.headers == e.headers);
  CHECK(m.envelope.attempt == e.attempt);
  CHECK(m.envelope.created_at == e.created_at);
  CHECK(m.envelope.key == e.key);
  CHECK(m.payload() == payload);
  CHECK_FALSE(m.wrapped);
}

TEST_CASE("the direct encoder writes the same bytes as msgpack-cxx", "[envelope]") {
  mqkit::detail::EnvelopeCodec codec;
  for (const char* topic : {"", "a.b", "order.created.eu-west"}) {
    const auto e = mqkit::Envelope::make(topic);
    std::string general;
    codec.encode_head(e, general);
    std::string direct(mqkit::detail::EnvelopeCodec::canonical_head_size(e), '\0');
    mqkit::detail::EnvelopeCodec::write_canonical_head(e, direct.data());
    CHECK(direct == general);
  }
}

TEST_CASE("envelopes that differ from a fresh one take the general encoder", "[envelope]") {
  using mqkit::detail::EnvelopeCodec;
  auto e = mqkit::Envelope::make("a.b");
  CHECK(EnvelopeCodec::canonical_head_size(e) > 0);
  SECTION("a later attempt") {
    e.attempt = 2;
  }
  SECTION("an older created_at") {
    e.created_at -= 5000;
  }
  SECTION("a key") {
    e.key = "k";
  }
  SECTION("headers") {
    e.headers["h"] = "v";
  }
  SECTION("a not-before time (1.1)") {
    e.not_before = e.created_at + 30000;
  }
  CHECK(EnvelopeCodec::canonical_head_size(e) == 0);
  const auto m = mqkit::decode(mqkit::encode(e, "p"));
  CHECK(m.envelope.not_before == e.not_before);
  CHECK(m.envelope.attempt == e.attempt);
  CHECK(m.envelope.created_at == e.created_at);
  CHECK(m.envelope.key == e.key);
  CHECK(m.envelope.headers == e.headers);
}

TEST_CASE("the topic comes first in the frame so SUB prefix filters work", "[envelope]") {
  const auto frame = mqkit::encode(mqkit::Envelope::make("order.created"), "x");
  CHECK(frame.starts_with(std::string("order.created") + '\0'));
  CHECK(mqkit::has_envelope(frame));
}

TEST_CASE("a frame without the magic is a raw payload with a fresh envelope", "[envelope]") {
  const auto a = mqkit::decode("plain text from pyzmq");
  const auto b = mqkit::decode("plain text from pyzmq");
  CHECK(a.wrapped);
  CHECK(a.payload() == "plain text from pyzmq");
  CHECK(a.topic().empty());
  CHECK(a.envelope.attempt == 1);
  CHECK(a.id() != b.id());
  CHECK(mqkit::decode(std::string("nul\0but no magic", 16)).wrapped);
}

TEST_CASE("topics and keys that cannot be framed are refused on encode", "[envelope]") {
  auto e = mqkit::Envelope::make(std::string(256, 't'));
  CHECK_THROWS_AS(mqkit::encode(e, "x"), mqkit::Error);
  e.topic = std::string("a\0b", 3);
  CHECK_THROWS_AS(mqkit::encode(e, "x"), mqkit::Error);
  e.topic = "ok";
  e.key = std::string(256, 'k');
  CHECK_THROWS_AS(mqkit::encode(e, "x"), mqkit::Error);
}

TEST_CASE("every truncation of a frame is an error or a raw payload, never a crash", "[envelope]") {
  auto e = mqkit::Envelope::make("t");
  e.headers = {{"h", "v"}};
  const auto frame = mqkit::encode(e, "");
  const auto magic_end = std::string("t").size() + 1 + 4;
  for (std::size_t n = 0; n < frame.size(); ++n) {
    mqkit::Message m;
    const auto ec = mqkit::decode(std::string_view(frame).substr(0, n), m);
    if (n < magic_end) {
      CHECK_FALSE(ec);  // no magic yet: a raw payload
      CHECK(m.wrapped);
    } else {
      CHECK(ec == errc::truncated);
    }
  }
}

TEST_CASE("payload plus headers over the limit is refused as too large", "[envelope]") {
  mqkit::Limits limits;
  limits.max_message_size = 100;
  auto e = mqkit::Envelope::make("t");
  mqkit::Message m;
  CHECK_FALSE(mqkit::decode(mqkit::encode(e, std::string(100, 'x')), m, limits));
  CHECK(mqkit::decode(mqkit::encode(e, std::string(101, 'x')), m, limits) == errc::too_large);
  e.headers = {{"name", std::string(60, 'v')}};
  CHECK(mqkit::decode(mqkit::encode(e, std::string(40, 'x')), m, limits) == errc::too_large);
  CHECK(mqkit::decode(std::string(101, 'r'), m, limits) == errc::too_large);
}

TEST_CASE("fields of the wrong type are refused with a typed error", "[envelope]") {
  mqkit::Message m;
  auto wrong_id = frame_with_fields([](auto& pk) {
    pk.pack_map(2);
    pk.pack(1);
    pk.pack(std::string("not-bytes"));
    pk.pack(2);
    pk.pack(1);
  });
  CHECK(mqkit::decode(wrong_id, m) == errc::wrong_type);
  auto wrong_headers = frame_with_fields([](auto& pk) {
    pk.pack_map(3);
    pack_id(pk);
    pk.pack(2);
    pk.pack(1);
    pk.pack(4);
    pk.pack(std::vector<int>{1, 2});
  });
  CHECK(mqkit::decode(wrong_headers, m) == errc::wrong_type);
  auto not_a_map = frame_with_fields([](auto& pk) { pk.pack(std::vector<int>{1}); });
  CHECK(mqkit::decode(not_a_map, m) == errc::wrong_type);
  auto missing_id = frame_with_fields([](auto& pk) {
    pk.pack_map(1);
    pk.pack(2);
    pk.pack(1);
  });
  CHECK(mqkit::decode(missing_id, m) == errc::malformed);
}

TEST_CASE("unknown fields of the same major version are ignored", "[envelope]") {
  auto frame = frame_with_fields([](auto& pk) {
    pk.pack_map(4);
    pack_id(pk);
    pk.pack(2);
    pk.pack(1234);
    pk.pack(99);  // a field from version 1.7
    pk.pack(std::vector<std::string>{"future"});
    pk.pack(std::string("named-field"));
    pk.pack(3.5);
  });
  const auto m = mqkit::decode(frame);
  CHECK(m.envelope.created_at == 1234);
  CHECK(m.payload() == "body");
}

TEST_CASE("an unknown major version is refused with MQKIT-ENVELOPE-VERSION", "[envelope]") {
  auto frame = frame_with_fields(
      [](auto& pk) {
        pk.pack_map(1);
        pack_id(pk);
      },
      /*major=*/2);
  try {
    (void)mqkit::decode(frame);
    FAIL("decoded a version 2 envelope");
  } catch (const mqkit::Error& e) {
    CHECK(e.code() == errc::unsupported_version);
    CHECK_THAT(e.what(), Catch::Contains("MQKIT-ENVELOPE-VERSION"));
  }
}

TEST_CASE("a container claiming four billion entries fails without allocating", "[envelope]") {
  mqkit::Message m;
  const std::string head("t\0\xA3MQK\x01\x00", 8);
  CHECK(mqkit::decode(head + "\xdf\xff\xff\xff\xff", m) == errc::malformed);
  CHECK(mqkit::decode(head + "\x82\x01\xc4\x10" + std::string(16, 'i') + "\x04\xdf\xff\xff\xff\xff",
                      m) == errc::malformed);
}

TEST_CASE("random bytes never crash the decoder", "[envelope]") {
  std::mt19937 rng(12345);
  const auto valid = mqkit::encode(mqkit::Envelope::make("x.y"), "payload");
  mqkit::Message m;
  for (int i = 0; i < 20000; ++i) {
    std::string frame;
    if (i % 2 == 0) {
      frame.resize(rng() % 200);
      for (auto& c : frame) c = static_cast<char>(rng());
    } else {  // a valid frame with a few bytes flipped, so the envelope path is exercised
      frame = valid;
      for (int k = 0; k < 3; ++k) frame[rng() % frame.size()] = static_cast<char>(rng());
    }
    (void)mqkit::decode(frame, m);
  }
  SUCCEED("20000 random frames decoded or refused");
}

TEST_CASE("not_before is optional, an unsigned integer, and reset by the next decode",
          "[envelope]") {
  mqkit::detail::EnvelopeCodec codec;
  mqkit::Message m;
  auto e = mqkit::Envelope::make("t");
  e.not_before = 1'900'000'000'000;
  REQUIRE(codec.decode(mqkit::encode(e, "later"), m, {}));
  CHECK(m.envelope.not_before == 1'900'000'000'000u);
  // A raw frame that follows is wrapped in a fresh envelope: none either.
  REQUIRE(codec.decode("no envelope here", m, {}));
  CHECK(m.wrapped);
  CHECK(m.envelope.not_before == 0);
  REQUIRE(codec.decode(mqkit::encode(e, "later"), m, {}));
  // A canonical frame that follows carries none: the decoder's message is reused.
  REQUIRE(codec.decode(mqkit::encode(mqkit::Envelope::make("t"), "now"), m, {}));
  CHECK(m.envelope.not_before == 0);
  e.not_before = 0;
  e.headers["h"] = "v";
  REQUIRE(codec.decode(mqkit::encode(e, "now"), m, {}));
  CHECK(m.envelope.not_before == 0);
  // {1: id, 6: "soon"}: the wrong type is refused.
  std::string frame("t\0\xA3MQK\x01\x01\x82\x01\xc4\x10", 12);
  frame.append(reinterpret_cast<const char*>(mqkit::MessageId::generate().bytes().data()), 16);
  frame += "\x06\xa4soon";
  const auto result = codec.decode(frame, m, {});
  CHECK_FALSE(result);
  CHECK(result.detail == std::string("field 'not_before' must be an unsigned integer"));
}
