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
  CHECK(k.exact() == "p:map:exact");
  CHECK(k.patterns() == "p:map:re");
  CHECK(k.version() == "p:map:version");
  CHECK(k.changed() == "p:map:changed");
  CHECK(k.channel() == "p:map:changes");
  CHECK(k.log() == "p:map:log");
  CHECK(k.lost() == "p:map:lost");
  CHECK(k.staging("ab12") == "p:map:staging:ab12");
  CHECK(k.events() == "p:events");
  CHECK(k.event_seen("n1:7") == "p:seen:n1:7");
  CHECK(k.account("a@x") == "p:account:a@x");
  CHECK(k.account_recipients("a@x") == "p:account-rcpts:a@x");
  CHECK(k.account_ips("a@x") == "p:account-ips:a@x");
  CHECK(k.account_events("a@x") == "p:account-events:a@x");
  CHECK(k.account_log("a@x") == "p:account-log:a@x");
  CHECK(k.account_quiet("a@x") == "p:account-quiet:a@x");
  CHECK(k.accounts() == "p:accounts");
  CHECK(k.accounts_changed() == "p:accounts:changed");
  CHECK(k.accounts_locked() == "p:accounts:locked");
  CHECK(k.accounts_version() == "p:accounts:version");
  CHECK(k.accounts_channel() == "p:accounts:changes");
  CHECK(k.accounts_reaction() == "p:accounts:reaction");
  CHECK(k.hooks_due() == "p:hooks:due");
  CHECK(k.hook_job("e1/exec") == "p:hook:e1/exec");
  CHECK(k.hour_messages("2026112618") == "p:vol:h:2026112618:msgs");
  CHECK(k.hour_recipients("2026112618") == "p:vol:h:2026112618:rcpts");
  CHECK(k.hour_networks("2026112618", "a@x") == "p:vol:h:2026112618:nets:a@x");
  CHECK(k.month("202611", "a@x") == "p:vol:m:202611:a@x");
  CHECK(k.hour_total("2026112618") == "p:vol:t:2026112618");
  CHECK(k.volume_flush("i.1:2") == "p:vol:flush:i.1:2");
  CHECK(k.anomaly("hour_volume", "2026-11-26T18", "a@x") ==
        "p:anomaly:hour_volume:2026-11-26T18:a@x");
  CHECK(k.retro_requests() == "p:retro:requests");
  CHECK(k.retro_channel() == "p:retro:hunt");
  CHECK(k.retro_reply("ab12") == "p:retro:reply:ab12");
  CHECK(k.detect_groups("a@x") == "p:detect:groups:a@x");
  CHECK(k.detect_domains() == "p:detect:domains");
  CHECK(k.detect_feed() == "p:detect:feed");
  CHECK(k.discovery_candidates() == "p:discovery:candidates");
  CHECK(k.discovery_rejected() == "p:discovery:rejected");
  CHECK(k.discovery_sightings("x@gmx.com") == "p:discovery:sightings:x@gmx.com");
}

}  // namespace
}  // namespace compd
