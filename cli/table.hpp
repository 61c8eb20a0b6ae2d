// Tables for the admin commands (`group ls`, `stat`): aligned columns for
// people, one JSON array of objects for scripts.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mqkit::cli {

using TableRow = std::vector<std::pair<std::string, std::string>>;  // (column, value)

// Columns in the first row's order; values left-aligned, two spaces apart.
std::string format_table(const std::vector<TableRow>& rows);
// [{"column":"value",...},...]; values that are all digits become numbers.
std::string format_json_rows(const std::vector<TableRow>& rows);

}  // namespace mqkit::cli
