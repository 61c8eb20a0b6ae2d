// Flags from a device's settings description (mqkit/device_settings.hpp):
// one flag per setting, its value checked as it is parsed (a bad one is a
// usage error naming the flag), landed after parsing so that a default may
// follow other settings (the description's `finish`).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "mqkit/device_settings.hpp"
#include "mqkit/error.hpp"

namespace mqkit::cli {

template <typename Target>
class SettingFlags {
 public:
  // `description` must outlive this (the tables are static).
  SettingFlags(CLI::App& app, const SettingsDescription<Target>& description)
      : description_(description), slots_(description.settings.size()) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const auto& setting = description.settings[i];
      auto& slot = slots_[i];
      std::string help = setting.help;
      if (setting.show && !setting.show(Target{}).empty())
        help += " (default " + setting.show(Target{}) + ")";
      slot.option = repeatable(setting) ? app.add_option(setting.flag_name(), slot.values, help)
                                        : app.add_option(setting.flag_name(), slot.value, help);
      slot.option->type_name(setting.value_name)->check(validator(setting));
      if (setting.required) slot.option->required();
    }
  }
  SettingFlags(const SettingFlags&) = delete;  // CLI11 holds pointers into slots_
  SettingFlags& operator=(const SettingFlags&) = delete;

  // Lands the values given on the command line in `target`.
  void apply(Target& target) const {
    std::set<std::string> given;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const auto& setting = description_.settings[i];
      const auto& slot = slots_[i];
      if (slot.option->count() == 0) continue;
      if (repeatable(setting)) {
        for (const auto& value : slot.values) setting.apply(target, value);
      } else {
        setting.apply(target, slot.value);
      }
      given.insert(setting.key);
    }
    if (description_.finish) description_.finish(target, given);
  }

 private:
  struct Slot {
    std::string value;
    std::vector<std::string> values;  // a repeatable flag's values, one per flag
    CLI::Option* option = nullptr;
  };

  // Given once per name or per group setting: the flag collects a list.
  static bool repeatable(const Setting<Target>& setting) {
    return setting.form == SettingForm::named_list || setting.form == SettingForm::group_setting;
  }

  // Tries the value on a scratch target: CLI11 reports "--flag: <why>".
  static CLI::Validator validator(const Setting<Target>& setting) {
    return CLI::Validator(
        [&setting](std::string& value) -> std::string {
          try {
            Target scratch;
            setting.apply(scratch, value);
            return {};
          } catch (const Error& e) {
            return e.what();
          }
        },
        "");
  }

  const SettingsDescription<Target>& description_;
  std::vector<Slot> slots_;  // sized once, before CLI11 is given addresses in it
};

}  // namespace mqkit::cli
