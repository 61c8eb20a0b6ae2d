// How `mqkit consume` prints payloads and JSON.
#include <catch2/catch.hpp>

#include "text_output.hpp"

using mqkit::cli::escape_line;

TEST_CASE("payload lines escape what would break a line", "[cli]") {
  CHECK(escape_line("plain text") == "plain text");
  CHECK(escape_line("a\nb") == "a\\nb");
  CHECK(escape_line("tab\there") == "tab\\there");
  CHECK(escape_line("back\\slash") == "back\\\\slash");
  CHECK(escape_line(std::string("\0\x01\x7f", 3)) == "\\x00\\x01\\x7f");
  CHECK(escape_line("wörld ✓") == "wörld ✓");
  CHECK(escape_line("\xff\xc3") == "\\xff\\xc3");
}

TEST_CASE("JSON output carries every envelope field", "[cli]") {
  mqkit::Message m;
  m.envelope = mqkit::Envelope::make("order.created");
  m.envelope.headers["q\"uote"] = "v";
  m.envelope.key = "k";
  m.set_payload("line\n\"two\"");
  const auto json = mqkit::cli::message_json(m);
  CHECK_THAT(json, Catch::Contains("\"id\":\"" + m.id().to_string() + "\""));
  CHECK_THAT(json, Catch::Contains("\"topic\":\"order.created\""));
  CHECK_THAT(json, Catch::Contains("\"attempt\":1"));
  CHECK_THAT(json, Catch::Contains("\"headers\":{\"q\\\"uote\":\"v\"}"));
  CHECK_THAT(json, Catch::Contains("\"key\":\"k\""));
  CHECK_THAT(json, Catch::Contains("\"payload\":\"line\\n\\\"two\\\"\""));
}

TEST_CASE("binary payloads are base64 in JSON", "[cli]") {
  mqkit::Message m;
  m.envelope = mqkit::Envelope::make("t");
  m.set_payload(std::string("\xff\x00\x01", 3));
  CHECK_THAT(mqkit::cli::message_json(m), Catch::Contains("\"payload_base64\":\"/wAB\""));
  CHECK(mqkit::cli::base64("ab") == "YWI=");
}
