#include "compd/base/settings.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <set>

namespace compd {
namespace {

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/compd_settings_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST_CASE("settings table is well formed", "[settings]") {
  std::set<std::string> names;
  for (const auto& d : Settings()) {
    INFO(d.name);
    CHECK(names.insert(d.name).second);
    CHECK(std::string(d.doc).size() > 10);
    // Every default must pass its own validation.
    Config c;
    CHECK(c.Set(d.name, d.default_value, "test").ok());
  }
}

TEST_CASE("values are validated and normalised", "[settings]") {
  struct Case {
    const char* name;
    const char* value;
    bool ok;
    const char* stored_or_error;
  };
  const Case cases[] = {
      {"action", "monitor", true, "monitor"},
      {"action", "rejct", false,
       "f:1: action: 'rejct' is not one of reject|tempfail|quarantine|discard|monitor"},
      {"foreground", "Yes", true, "yes"},
      {"foreground", "off", true, "no"},
      {"foreground", "maybe", false, "f:1: foreground: 'maybe' is not yes or no"},
      {"event_queue_size", "500", true, "500"},
      {"event_queue_size", "5", false, "f:1: event_queue_size: '5' is out of range 10..10000000"},
      {"event_queue_size", "12x", false, "f:1: event_queue_size: '12x' is not a whole number"},
      {"redis_timeout", "250ms", true, "250ms"},
      {"redis_timeout", "60000ms", true, "1m"},
      {"redis_timeout", "5", true, "5s"},
      {"redis_timeout", "2h", false, "f:1: redis_timeout: '2h' is out of range 10ms..1m"},
      {"redis_timeout", "soon", false,
       "f:1: redis_timeout: 'soon' is not a duration such as 250ms, 5s, 10m, 2h, 7d"},
      {"nonsense", "1", false, "f:1: unknown setting 'nonsense'"},
      // Found by fuzzing: the multiplication overflowed and wrapped into range.
      {"redis_timeout", "8825400613783079d", false,
       "f:1: redis_timeout: '8825400613783079d' is not a duration such as 250ms, 5s, 10m, 2h, "
       "7d"},
  };
  for (const auto& c : cases) {
    INFO(c.name << " = " << c.value);
    Config config;
    Status s = config.Set(c.name, c.value, "f:1");
    CHECK(s.ok() == c.ok);
    if (c.ok) {
      CHECK(config.GetString(c.name) == c.stored_or_error);
    } else {
      CHECK(s.message() == c.stored_or_error);
    }
  }
}

TEST_CASE("config file: comments, whitespace, errors name file and line", "[settings]") {
  std::string path = WriteTemp("# comment\n\n  action =  monitor  \nprefix=test:\n");
  Config c;
  REQUIRE(c.LoadFile(path).ok());
  CHECK(c.GetString("action") == "monitor");
  CHECK(c.GetString("prefix") == "test:");
  CHECK(c.Origin("action") == path + ":3");
  CHECK(c.Origin("socket") == "default");
  std::remove(path.c_str());

  path = WriteTemp("action = reject\nbogus_key = 1\n");
  Status s = c.LoadFile(path);
  CHECK(s.IsInvalid());
  CHECK(s.message() == path + ":2: unknown setting 'bogus_key'");
  std::remove(path.c_str());

  path = WriteTemp("action reject\n");
  s = c.LoadFile(path);
  CHECK(s.message() == path + ":1: expected 'name = value'");
  std::remove(path.c_str());

  CHECK(c.LoadFile("/nonexistent/compd.conf").IsNotFound());
}

TEST_CASE("typed getters", "[settings]") {
  Config c;
  CHECK(c.GetDurationMs("redis_timeout") == 2000);
  CHECK(c.GetInt("event_queue_size") == 10000);
  CHECK_FALSE(c.GetBool("foreground"));
  CHECK(c.GetString("prefix") == "compd:");
}

TEST_CASE("environment overrides the file", "[settings]") {
  Config c;
  setenv("COMPD_REDIS_URL", "redis://10.0.0.1:6380/2", 1);
  REQUIRE(c.LoadEnvironment().ok());
  unsetenv("COMPD_REDIS_URL");
  CHECK(c.GetString("redis_url") == "redis://10.0.0.1:6380/2");
  CHECK(c.Origin("redis_url") == "COMPD_REDIS_URL");
}

TEST_CASE("example config and reference cover every setting", "[settings]") {
  std::string example = ExampleConfig(kScopeShared | kScopeMilter);
  std::string reference = SettingsReference();
  for (const auto& d : Settings()) {
    INFO(d.name);
    CHECK(example.find(std::string("#") + d.name + " = ") != std::string::npos);
    CHECK(reference.find(std::string("| `") + d.name + "` |") != std::string::npos);
  }
  // The example, uncommented, is itself a valid config.
  std::string uncommented;
  size_t pos = 0;
  while (pos < example.size()) {
    size_t nl = example.find('\n', pos);
    std::string line = example.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() > 1 && line[0] == '#' && line.find(" = ") != std::string::npos &&
        line.find(' ') > 1) {
      uncommented += line.substr(1) + "\n";
    }
  }
  std::string path = WriteTemp(uncommented);
  Config c;
  CHECK(c.LoadFile(path).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace compd

namespace compd {
namespace {

TEST_CASE("docs/configuration.md is the generated reference", "[settings]") {
  std::ifstream in(std::string(COMPD_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE(in.good());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Regenerate with: build/compd-milter --print-reference > docs/configuration.md
  CHECK(text == SettingsReference());
}

}  // namespace
}  // namespace compd
