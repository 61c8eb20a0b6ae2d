// Escaping and JSON rendering of messages for `mqkit consume`.
#include "text_output.hpp"

#include <cstdio>

namespace mqkit::cli {
namespace {

// Length of the valid UTF-8 sequence starting at `i`, or 0 if invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0)
    n = 2, cp = b0 & 0x1F;
  else if ((b0 & 0xF0) == 0xE0)
    n = 3, cp = b0 & 0x0F;
  else if ((b0 & 0xF8) == 0xF0)
    n = 4, cp = b0 & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_hex_escape(std::string& out, const char* format, unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, format, value);
  out += buf;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) noexcept {
  for (std::size_t i = 0; i < bytes.size();) {
    const std::size_t n = utf8_sequence(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string escape_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    const std::size_t n = c >= 0x80 ? utf8_sequence(s, i) : 0;
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      append_hex_escape(out, "\\x%02x", c);
      ++i;
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F)
          append_hex_escape(out, "\\u%04x", c);
        else
          out.push_back(ch);
    }
  }
  out.push_back('"');
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[v >> 18 & 63]);
    out.push_back(kAlphabet[v >> 12 & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[v >> 6 & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[v & 63] : '=');
  }
  return out;
}

std::string message_json(const Message& m) {
  // Header names and values, topic and key come from the network: render
  // invalid UTF-8 in them with the same escapes as payload lines.
  auto text = [](std::string_view s) { return is_valid_utf8(s) ? std::string(s) : escape_line(s); };
  std::string out = "{\"id\":";
  append_json_string(out, m.id().to_string());
  out += ",\"topic\":";
  append_json_string(out, text(m.topic()));
  out += ",\"attempt\":" + std::to_string(m.envelope.attempt);
  out += ",\"created_at\":" + std::to_string(m.envelope.created_at);
  out += ",\"headers\":{";
  bool first = true;
  for (const auto& [name, value] : m.envelope.headers) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, text(name));
    out.push_back(':');
    append_json_string(out, text(value));
  }
  out += "}";
  if (m.envelope.key) {
    out += ",\"key\":";
    append_json_string(out, text(*m.envelope.key));
  }
  if (is_valid_utf8(m.payload())) {
    out += ",\"payload\":";
    append_json_string(out, m.payload());
  } else {
    out += ",\"payload_base64\":\"" + base64(m.payload()) + "\"";
  }
  out += "}";
  return out;
}

}  // namespace mqkit::cli
