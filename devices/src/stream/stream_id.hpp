// DIR/STREAM_ID: which stream a directory holds. Made once, at random, when
// a stream directory is first opened; a directory removed and made again gets
// a new one, so a reader can tell a stream that was reset (whose offsets
// start again from 0) from the one it was reading.
#pragma once

#include <string>

namespace mqkit::devices::detail {

// The id in DIR/STREAM_ID, written first when there is none. Throws Error
// naming the file when it cannot be read or written.
std::string load_or_create_stream_id(const std::string& stream_dir);

}  // namespace mqkit::devices::detail
