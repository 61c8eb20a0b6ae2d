// How the CLI prints message bytes: one line per payload with escapes, and
// JSON objects for --json.
#pragma once

#include <string>
#include <string_view>

#include "mqkit/envelope.hpp"

namespace mqkit::cli {

// One payload as one line: printable ASCII and valid UTF-8 as they are;
// backslash, newline, carriage return and tab as \\ \n \r \t; every other
// byte (controls, DEL, invalid UTF-8) as \xHH.
std::string escape_line(std::string_view bytes);

// Appends `text` as a JSON string literal (requires valid UTF-8).
void append_json_string(std::string& out, std::string_view text);

bool is_valid_utf8(std::string_view bytes) noexcept;
std::string base64(std::string_view bytes);

// {"id":..,"topic":..,"attempt":..,"created_at":..,"headers":{..},"key":..,
//  "payload":".."} — or "payload_base64" when the payload is not UTF-8.
std::string message_json(const Message& message);

}  // namespace mqkit::cli
