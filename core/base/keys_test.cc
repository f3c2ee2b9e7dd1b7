#include "compd/base/keys.h"

#include <catch2/catch.hpp>

namespace compd {
namespace {

// The names are a contract with data already in Redis, with rspamd's multimap (it reads
// map:exact), with the rspamd plugin and with operators' scripts: a change here is a
// migration, not a refactoring.
TEST_CASE("keys: every name under the prefix", "[keys]") {
  Keys k("p:");
  CHECK(Keys().prefix == "compd:");
  const struct {
    std::string key;
    const char* want;
  } kKeys[] = {
      {k.exact(), "p:map:exact"},
      {k.patterns(), "p:map:re"},
      {k.version(), "p:map:version"},
      {k.changed(), "p:map:changed"},
      {k.channel(), "p:map:changes"},
      {k.log(), "p:map:log"},
      {k.lost(), "p:map:lost"},
      {k.staging("ab12"), "p:map:staging:ab12"},
      {k.events(), "p:events"},
      {k.event_seen("n1:7"), "p:seen:n1:7"},
      {k.account("a@x"), "p:account:a@x"},
      {k.account_recipients("a@x"), "p:account-rcpts:a@x"},
      {k.account_ips("a@x"), "p:account-ips:a@x"},
      {k.account_events("a@x"), "p:account-events:a@x"},
      {k.account_log("a@x"), "p:account-log:a@x"},
      {k.account_quiet("a@x"), "p:account-quiet:a@x"},
      {k.accounts(), "p:accounts"},
      {k.accounts_changed(), "p:accounts:changed"},
      {k.accounts_locked(), "p:accounts:locked"},
      {k.accounts_version(), "p:accounts:version"},
      {k.accounts_channel(), "p:accounts:changes"},
      {k.accounts_reaction(), "p:accounts:reaction"},
      {k.hooks_due(), "p:hooks:due"},
      {k.hook_job("e1/exec"), "p:hook:e1/exec"},
      {k.hour_messages("2026112618"), "p:vol:h:2026112618:msgs"},
      {k.hour_recipients("2026112618"), "p:vol:h:2026112618:rcpts"},
      {k.hour_networks("2026112618", "a@x"), "p:vol:h:2026112618:nets:a@x"},
      {k.month("202611", "a@x"), "p:vol:m:202611:a@x"},
      {k.hour_total("2026112618"), "p:vol:t:2026112618"},
      {k.volume_flush("i.1:2"), "p:vol:flush:i.1:2"},
      {k.anomaly("hour_volume", "2026-11-26T18", "a@x"), "p:anomaly:hour_volume:2026-11-26T18:a@x"},
      {k.retro_requests(), "p:retro:requests"},
      {k.retro_channel(), "p:retro:hunt"},
      {k.retro_reply("ab12"), "p:retro:reply:ab12"},
      {k.detect_groups("a@x"), "p:detect:groups:a@x"},
      {k.detect_window("a@x"), "p:detect:window:a@x"},
      {k.detect_window_pattern(), "p:detect:window:*"},
      {k.detect_domains(), "p:detect:domains"},
      {k.detect_feed(), "p:detect:feed"},
      {k.discovery_candidates(), "p:discovery:candidates"},
      {k.discovery_rejected(), "p:discovery:rejected"},
      {k.discovery_sightings("x@gmx.com"), "p:discovery:sightings:x@gmx.com"},
  };
  for (const auto& c : kKeys) CHECK(c.key == c.want);
}

}  // namespace
}  // namespace compd
