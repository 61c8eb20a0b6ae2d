// The device settings descriptions: one key per member, defaults read from the
// structs, values parsed and landed the same way for the CLI and topologies.
#include <catch2/catch.hpp>

#include <set>

#include "mqkit/device_settings.hpp"
#include "mqkit/error.hpp"

namespace {

template <typename Target>
const mqkit::Setting<Target>& setting(const mqkit::SettingsDescription<Target>& description,
                                      const std::string& key) {
  for (const auto& s : description.settings)
    if (s.key == key) return s;
  FAIL("no setting " << key);
  throw;
}

}  // namespace

TEST_CASE("a setting's flag is its key with dashes unless it names its own", "[settings]") {
  const auto& proxy = mqkit::proxy_settings();
  CHECK(setting(proxy, "ack_timeout").flag_name() == "--ack-timeout");
  CHECK(setting(proxy, "groups").flag_name() == "--group");
  std::set<std::string> keys;
  for (const auto& s : proxy.settings) CHECK(keys.insert(s.key).second);
  for (const auto& s : mqkit::stream_settings().settings) CHECK(keys.count(s.key) <= 1);
}

TEST_CASE("the defaults shown are the structs' own", "[settings]") {
  const mqkit::ProxySettings proxy;
  CHECK(setting(mqkit::proxy_settings(), "ack_timeout").show(proxy) == "30s");
  CHECK(setting(mqkit::proxy_settings(), "backoff").show(proxy) == "exponential:1s..60s");
  CHECK(setting(mqkit::proxy_settings(), "fsync").show(proxy) == "always");
  CHECK(setting(mqkit::proxy_settings(), "max_spool").show(proxy).empty());  // none
  const mqkit::StreamSettings stream;
  CHECK(setting(mqkit::stream_settings(), "segment_size").show(stream) == "64MiB");
  CHECK(setting(mqkit::stream_settings(), "dedup_window").show(stream) == "100000");
}

TEST_CASE("values land where they belong and bad ones say why", "[settings]") {
  const auto& d = mqkit::proxy_settings();
  mqkit::ProxySettings p;
  setting(d, "max_attempts").apply(p, "3");
  setting(d, "backoff").apply(p, "fixed:100ms");  // keeps max_attempts
  setting(d, "groups").apply(p, "billing=order.created,order.paid");
  setting(d, "fsync").apply(p, "interval=20ms");
  CHECK(p.retry.max_attempts == 3);
  CHECK(p.retry.to_string() == "fixed:100ms");
  CHECK(p.groups.at("billing") == std::vector<std::string>{"order.created", "order.paid"});
  CHECK(p.spool.durability == mqkit::Durability::interval);
  CHECK(p.spool.sync_interval == std::chrono::milliseconds(20));
  CHECK_THROWS_WITH(setting(d, "heartbeat").apply(p, "0"), "must be positive, e.g. 1s");
  CHECK_THROWS_WITH(setting(d, "segment_size").apply(p, "1KiB"), "must be at least 4KiB");
  CHECK_THROWS_WITH(setting(d, "groups").apply(p, "email"), Catch::Contains("NAME=FILTER"));
  mqkit::StreamSettings stream;
  CHECK_THROWS_WITH(setting(mqkit::stream_settings(), "partitions").apply(stream, "0"),
                    "must be a positive integer");
}

TEST_CASE("a proxy's segments follow its spool limit unless given", "[settings]") {
  const auto& d = mqkit::proxy_settings();
  mqkit::ProxySettings p;
  setting(d, "max_spool").apply(p, "8MiB");
  d.finish(p, {"max_spool"});
  CHECK(p.spool.segment_size == 1024 * 1024);
  mqkit::ProxySettings q;
  setting(d, "max_spool").apply(q, "8MiB");
  setting(d, "segment_size").apply(q, "4MiB");
  d.finish(q, {"max_spool", "segment_size"});
  CHECK(q.spool.segment_size == 4 * 1024 * 1024);
}

TEST_CASE("a group's own settings are NAME.KEY=VALUE and must name a declared group",
          "[settings][groups]") {
  const auto& description = mqkit::proxy_settings();
  const auto& group_setting = setting(description, "group_settings");
  CHECK(group_setting.flag_name() == "--group-setting");
  mqkit::ProxySettings p;
  setting(description, "groups").apply(p, "billing.eu=order.created");
  group_setting.apply(p, "billing.eu.max_attempts=7");  // the last dot splits name and key
  group_setting.apply(p, "billing.eu.ack_timeout=1500ms");
  group_setting.apply(p, "billing.eu.backoff=fixed:2s");
  description.finish(p, {});
  const auto& own = p.group_settings.at("billing.eu");
  CHECK(own.max_attempts == 7u);
  CHECK(own.ack_timeout == std::chrono::milliseconds(1500));
  CHECK(own.words() ==
        std::vector<std::string>{"max_attempts=7", "ack_timeout=1500ms", "backoff=fixed:2s"});
  // Unset keys follow the proxy's.
  p.retry = mqkit::RetryPolicy::parse("exponential:1s..9s", 3);
  CHECK(own.retry(p.retry).max_attempts == 7);
  CHECK(own.retry(p.retry).to_string() == "fixed:2s");
  CHECK(mqkit::GroupSettings{}.retry(p.retry).to_string() == "exponential:1s..9s");
  CHECK(mqkit::GroupSettings{}.ack_timeout_or(std::chrono::seconds(4)) == std::chrono::seconds(4));

  auto error_of = [&](const std::string& value) {
    try {
      group_setting.apply(p, value);
    } catch (const mqkit::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("billing.max_attempts"), Catch::Contains("must be NAME.KEY=VALUE"));
  CHECK_THAT(error_of("billing.ordered=true"),
             Catch::Contains("'ordered' is not a group setting (a group may set max_attempts, "
                             "ack_timeout, backoff)"));
  CHECK_THAT(error_of("billing.max_attempts=zero"), Catch::StartsWith("max_attempts: "));
  CHECK_THAT(error_of("bil/ling.max_attempts=2"), Catch::Contains("group name 'bil/ling'"));

  mqkit::ProxySettings undeclared;
  group_setting.apply(undeclared, "ghost.max_attempts=2");
  try {
    description.finish(undeclared, {});
    FAIL("settings of an undeclared group were taken");
  } catch (const mqkit::Error& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("group 'ghost' has settings of its own but is not declared"));
  }
}
