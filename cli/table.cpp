// Aligned text tables and their JSON form.
#include "table.hpp"

#include <algorithm>

#include "text_output.hpp"

namespace mqkit::cli {
namespace {

bool is_number(const std::string& value) {
  return !value.empty() && value.size() < 20 &&
         std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string format_table(const std::vector<TableRow>& rows) {
  if (rows.empty()) return {};
  std::vector<std::string> columns;
  for (const auto& [column, value] : rows.front()) columns.push_back(column);
  std::vector<std::size_t> width;
  for (const auto& c : columns) width.push_back(c.size());
  auto value_of = [](const TableRow& row, const std::string& column) -> std::string {
    for (const auto& [c, v] : row)
      if (c == column) return escape_line(v);
    return "-";
  };
  for (const auto& row : rows)
    for (std::size_t i = 0; i < columns.size(); ++i)
      width[i] = std::max(width[i], value_of(row, columns[i]).size());
  auto line = [&](auto cell) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      std::string text = cell(i);
      if (i + 1 < columns.size()) text.resize(width[i] + 2, ' ');
      out += text;
    }
    return out + "\n";
  };
  std::string out = line([&](std::size_t i) {
    std::string upper = columns[i];
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    return upper;
  });
  for (const auto& row : rows)
    out += line([&](std::size_t i) { return value_of(row, columns[i]); });
  return out;
}

std::string format_json_rows(const std::vector<TableRow>& rows) {
  std::string out = "[";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    out += r == 0 ? "{" : ",{";
    for (std::size_t i = 0; i < rows[r].size(); ++i) {
      const auto& [column, value] = rows[r][i];
      if (i > 0) out += ",";
      append_json_string(out, column);
      out += ":";
      if (is_number(value))
        out += value;
      else
        append_json_string(out, escape_line(value));
    }
    out += "}";
  }
  return out + "]\n";
}

}  // namespace mqkit::cli
