#include "compd/map/matcher.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "compd/map/rspamd_map.h"

namespace compd {
namespace {

// Entries come from ParseEntry, as they do in the program. Throws (a test failure) when
// ParseEntry refuses the text.
Entry Parsed(const std::string& text) {
  Entry e;
  const Status s = ParseEntry(text, &e);
  if (!s.ok()) throw std::runtime_error(text + ": " + s.ToString());
  return e;
}

Entry Exact(const std::string& address) { return Parsed(address); }

Entry Pattern(const std::string& regex, const std::string& flags = "") {
  return Parsed("/" + regex + "/" + flags);
}

// Entries built field by field, for what ParseEntry would refuse: the matcher must still
// answer correctly, or fail cleanly, for anything it is handed.
Entry RawExact(const std::string& address) { return RawExactEntry(address); }
Entry RawPattern(const std::string& regex, const std::string& flags = "") {
  return RawPatternEntry(regex, flags);
}

std::shared_ptr<const Matcher> MustBuild(const std::vector<Entry>& entries,
                                         const Matcher::Options& options = {}) {
  std::shared_ptr<const Matcher> m;
  const Status s = Matcher::Build(entries, options, &m);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(m != nullptr);
  return m;
}

// What a lookup reports, as one comparable string: "" for no match.
std::string Describe(const std::optional<Match>& m) {
  if (!m) return "";
  return std::string(EntryKindName(m->kind)) + " " + m->entry;
}

struct Case {
  const char* name;
  std::vector<Entry> entries;
  CanonOptions canon;
  const char* address;
  const char* want;  // Describe() of the expected answer
};

CanonOptions StripTags() {
  CanonOptions c;
  c.strip_subaddress = true;
  return c;
}

CanonOptions GmailDots() {
  CanonOptions c;
  c.gmail_dots = true;
  return c;
}

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // Exact entries: whole address, ASCII case-insensitive, like rspamd's plain maps.
      {"exact hit ignores ASCII case",
       {Exact("john@example.com")},
       {},
       "John@Example.COM",
       "exact john@example.com"},
      {"exact is a whole-address match", {Exact("john@example.com")}, {}, "xjohn@example.com", ""},
      {"exact does not match a prefix", {Exact("john@example.com")}, {}, "john@example.co", ""},
      {"exact leaves non-ASCII case alone",
       {Exact("jösé@example.com")},
       {},
       "JÖSÉ@example.com",
       ""},
      {"exact non-ASCII bytes compare as bytes",
       {Exact("jösé@example.com")},
       {},
       "JöSé@EXAMPLE.com",
       "exact jösé@example.com"},
      // +tag: kept by default (as rspamd keeps it), stripped only when configured.
      {"+tag is significant by default", {Exact("john@example.com")}, {}, "john+x@example.com", ""},
      {"+tag stripped when configured",
       {Exact("john@example.com")},
       StripTags(),
       "John+Promo@example.com",
       "exact john@example.com"},
      {"tagged entry reports the entry as written",
       {Exact("john+a@example.com")},
       StripTags(),
       "john+b@example.com",
       "exact john+a@example.com"},
      {"tagged entry without stripping needs the same tag",
       {Exact("john+a@example.com")},
       {},
       "john+b@example.com",
       ""},
      {"colliding entries report the first-sorting one",
       {Exact("john+b@example.com"), Exact("john+a@example.com")},
       StripTags(),
       "john@example.com",
       "exact john+a@example.com"},
      {"untagged entry wins over tagged when it sorts first",
       {Exact("john+a@example.com"), Exact("john@example.com")},
       StripTags(),
       "john+z@example.com",
       "exact john+a@example.com"},
      {"gmail dots off by default", {Exact("jdoe@gmail.com")}, {}, "j.doe@gmail.com", ""},
      {"gmail dots removed when configured",
       {Exact("j.doe@gmail.com")},
       GmailDots(),
       "JD.o.e@gmail.com",
       "exact j.doe@gmail.com"},
      {"gmail dots only for gmail",
       {Exact("jdoe@example.com")},
       GmailDots(),
       "j.doe@example.com",
       ""},
      {"googlemail too",
       {Exact("jdoe@googlemail.com")},
       GmailDots(),
       "j.doe@googlemail.com",
       "exact jdoe@googlemail.com"},
      // Patterns, with rspamd's meaning: case-sensitive and unanchored unless told.
      {"pattern is unanchored",
       {Pattern("a.b@x.com")},
       {},
       "zzza.b@x.com.evil",
       "pattern /a.b@x.com/"},
      {"pattern dot matches any character",
       {Pattern("a.b@x.com")},
       {},
       "a-b@x.com",
       "pattern /a.b@x.com/"},
      {"pattern is case-sensitive", {Pattern("a.b@x.com")}, {}, "A.B@X.COM", ""},
      {"i flag ignores case", {Pattern("a.b@x.com", "i")}, {}, "A.B@X.COM", "pattern /a.b@x.com/i"},
      {"anchors mean the whole address", {Pattern("^a@x\\.com$")}, {}, "ba@x.com", ""},
      {"canon options do not touch patterns",
       {Pattern("^john\\+promo@")},
       StripTags(),
       "john+promo@example.com",
       "pattern /^john\\+promo@/"},
      {"patterns see case as it came",
       {Pattern("^John@")},
       {},
       "John@example.com",
       "pattern /^John@/"},
      // Start-anchored patterns run in a set of their own; what counts as anchored must
      // not change what matches.
      {"anchored alternative", {Pattern("^(a|b)c")}, {}, "xbc", ""},
      {"anchored alternative at start", {Pattern("^(a|b)c")}, {}, "bcx", "pattern /^(a|b)c/"},
      {"top-level alternative escapes the anchor", {Pattern("^a|b")}, {}, "xb", "pattern /^a|b/"},
      {"| inside a class is no alternative", {Pattern("^[|]b")}, {}, "x|b", ""},
      {"class with ] first, then an alternative",
       {Pattern("^[]|]a|b")},
       {},
       "xb",
       "pattern /^[]|]a|b/"},
      {"escaped | is no alternative", {Pattern("^\\|b")}, {}, "x|b", ""},
      {"escaped ] inside a class", {Pattern("^[\\]|]x|b")}, {}, "zb", "pattern /^[\\]|]x|b/"},
      {"optional anchor ^?", {Pattern("^?a")}, {}, "xa", "pattern /^?a/"},
      {"optional anchor ^*", {Pattern("^*a")}, {}, "xa", "pattern /^*a/"},
      {"optional anchor ^{0,1}", {Pattern("^{0,1}a")}, {}, "xa", "pattern /^{0,1}a/"},
      {"quoted | stays literal", {Pattern("^\\Qa|b\\E")}, {}, "a|b", "pattern /^\\Qa|b\\E/"},
      {"quoted | stays literal, anchored", {Pattern("^\\Qa|b\\E")}, {}, "xa|b", ""},
      {"anchor inside a group", {Pattern("(^a)")}, {}, "xa", ""},
      {"anchor with m flag matches after a newline",
       {Pattern("^a", "m")},
       {},
       "x\na",
       "pattern /^a/m"},
      {"anchored and unanchored: first-sorting wins",
       {Pattern("^x"), Pattern("^b|y")},
       {},
       "xy",
       "pattern /^b|y/"},
      // s and m: what the flags mean in Hyperscan, spelled as RE2 inline flags.
      {"dot does not match newline", {Pattern("a.b")}, {}, "a\nb", ""},
      {"s flag: dot matches newline", {Pattern("a.b", "s")}, {}, "a\nb", "pattern /a.b/s"},
      {"$ is end of text without m", {Pattern("^a$")}, {}, "a\nb", ""},
      {"m flag: ^ and $ at line breaks", {Pattern("^b$", "m")}, {}, "a\nb", "pattern /^b$/m"},
      {"flags combine", {Pattern("^B.C$", "ims")}, {}, "a\nb\nc", "pattern /^B.C$/ims"},
      // Encoding: bytes (Latin-1) without u, UTF-8 characters with it.
      {"without u a dot is one byte", {Pattern("^.@x$")}, {}, "\xc3\xa9@x", ""},
      {"without u two dots cover a 2-byte character",
       {Pattern("^..@x$")},
       {},
       "\xc3\xa9@x",
       "pattern /^..@x$/"},
      {"with u a dot is one character",
       {Pattern("^.@x$", "u")},
       {},
       "\xc3\xa9@x",
       "pattern /^.@x$/u"},
      {"with u two dots need two characters", {Pattern("^..@x$", "u")}, {}, "\xc3\xa9@x", ""},
      {"UTF-8 literal matches without u",
       {Pattern("^jos\xc3\xa9@")},
       {},
       "jos\xc3\xa9@example.com",
       "pattern /^jos\xc3\xa9@/"},
      {"u with i folds non-ASCII case",
       {Pattern("^jos\xc3\xa9@", "iu")},
       {},
       "JOS\xc3\x89@example.com",
       "pattern /^jos\xc3\xa9@/iu"},
      // Which entry is reported.
      {"first-sorting pattern is reported",
       {Pattern("b"), Pattern("ab"), Pattern("a")},
       {},
       "ab",
       "pattern /a/"},
      {"first-sorting pattern across encodings",
       {Pattern("y"), Pattern("x", "u")},
       {},
       "xy",
       "pattern /x/u"},
      {"first-sorting pattern across encodings, other way",
       {Pattern("x"), Pattern("y", "u")},
       {},
       "xy",
       "pattern /x/"},
      {"exact is tried before patterns",
       {Pattern("^a"), Exact("a@b.c")},
       {},
       "A@B.C",
       "exact a@b.c"},
      {"pattern when exact misses", {Pattern("^A"), Exact("a@b.c")}, {}, "A@B.D", "pattern /^A/"},
      // ParseEntry refuses these (they would list every address), but a matcher handed
      // them still means what RE2 means.
      {"empty regex matches everything", {RawPattern("")}, {}, "anyone@anywhere", "pattern //"},
      {"empty address can match a pattern", {RawPattern("^$")}, {}, "", "pattern /^$/"},
      {"empty address misses exact", {Exact("a@b.c")}, {}, "", ""},
      // Duplicates collapse.
      {"duplicate exact entries", {Exact("a@b.c"), Exact("a@b.c")}, {}, "a@B.c", "exact a@b.c"},
      {"duplicate patterns", {Pattern("a"), Pattern("a")}, {}, "a", "pattern /a/"},
  };
  return cases;
}

TEST_CASE("matcher answers like rspamd would", "[matcher]") {
  for (const Case& c : Cases()) {
    for (bool individual : {false, true}) {
      // The individual path is the fallback for a set that runs out of DFA memory: it
      // must give the same answers.
      SECTION(std::string(c.name) + (individual ? " (individual patterns)" : "")) {
        Matcher::Options options;
        options.canon = c.canon;
        options.individual_patterns = individual;
        auto m = MustBuild(c.entries, options);
        CHECK(Describe(m->Lookup(c.address)) == c.want);
      }
    }
  }
}

TEST_CASE("matcher counts distinct entries", "[matcher]") {
  auto m = MustBuild({Exact("a@b.c"), Exact("A@b.c"), Exact("d@e.f"), Pattern("x"), Pattern("x"),
                      Pattern("x", "i")});
  CHECK(m->exact_count() == 2);
  CHECK(m->pattern_count() == 2);

  Matcher::Options strip;
  strip.canon.strip_subaddress = true;
  m = MustBuild({Exact("a+1@b.c"), Exact("a+2@b.c"), Exact("a@b.c")}, strip);
  CHECK(m->exact_count() == 1);
}

TEST_CASE("empty matcher matches nothing", "[matcher]") {
  auto m = MustBuild({});
  CHECK(m->exact_count() == 0);
  CHECK(m->pattern_count() == 0);
  CHECK_FALSE(m->Lookup("a@b.c"));
  CHECK_FALSE(m->Lookup(""));
}

TEST_CASE("matcher rejects what it cannot compile, naming it", "[matcher]") {
  std::shared_ptr<const Matcher> m;
  Status s = Matcher::Build({Exact("a@b.c"), RawPattern("(a")}, &m);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("/(a/") != std::string::npos);
  CHECK(s.message().find("missing )") != std::string::npos);
  CHECK(m == nullptr);

  // Invalid UTF-8 is an error only where the pattern is read as UTF-8.
  s = Matcher::Build({RawPattern("\xff", "u")}, &m);
  CHECK(s.IsInvalid());
  CHECK(Matcher::Build({RawPattern("\xff")}, &m).ok());

  Matcher::Options tiny;
  tiny.re2_max_mem = 4096;
  m = nullptr;
  s = Matcher::Build({Pattern("^[a-z0-9]{8,12}@mail0[0-9]\\.netgate\\.com\\.uy$", "i")}, tiny, &m);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("re2_max_mem") != std::string::npos);
  CHECK(m == nullptr);
}

// Realistic test-recipient patterns, all distinct.
std::vector<Entry> ManyPatterns(int n) {
  std::vector<Entry> out;
  for (int i = 0; i < n; ++i) {
    const std::string k = std::to_string(i);
    switch (i % 4) {
      case 0:
        out.push_back(Pattern("^[a-z0-9]{8,12}@mail" + k + "\\.netgate\\.com\\.uy$", "i"));
        break;
      case 1:
        out.push_back(Pattern("^info" + k + "[0-9]{0,3}@", "i"));
        break;
      case 2:
        out.push_back(Pattern("serv[a-z]*" + k + "@paypal\\."));
        break;
      default:
        out.push_back(Pattern("@host" + k + "\\.example\\.(com|net)$", "u"));
        break;
    }
  }
  return out;
}

TEST_CASE("10,000 patterns build and match", "[matcher]") {
  auto m = MustBuild(ManyPatterns(10000));
  CHECK(m->pattern_count() == 10000);
  CHECK(Describe(m->Lookup("AbCd1234@mail9996.netgate.com.uy")) ==
        "pattern /^[a-z0-9]{8,12}@mail9996\\.netgate\\.com\\.uy$/i");
  CHECK(Describe(m->Lookup("x@host9999.example.net")) ==
        "pattern /@host9999\\.example\\.(com|net)$/u");
  CHECK(Describe(m->Lookup("INFO77@x")) == "pattern /^info77[0-9]{0,3}@/i");
  CHECK(Describe(m->Lookup("john.doe@example.com")) == "");
}

TEST_CASE("concurrent lookups give the same answers", "[matcher]") {
  std::vector<Entry> entries = ManyPatterns(2000);
  for (int i = 0; i < 5000; ++i) entries.push_back(Exact("user" + std::to_string(i) + "@x.org"));
  auto m = MustBuild(entries);

  std::vector<std::string> addresses;
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const std::string k = std::to_string(rng() % 2500);
    switch (i % 6) {
      case 0:
        addresses.push_back("User" + k + "@x.org");
        break;
      case 1:
        addresses.push_back("abcdefgh" + k + "@mail" + k + ".netgate.com.uy");
        break;
      case 2:
        addresses.push_back("Info" + k + "@y");
        break;
      case 3:
        addresses.push_back("service" + k + "@paypal.com");
        break;
      case 4:
        addresses.push_back("z@host" + k + ".example.com");
        break;
      default:
        addresses.push_back("nobody" + k + "@nowhere.test");
        break;
    }
  }
  std::vector<std::string> want;
  for (const auto& a : addresses) want.push_back(Describe(m->Lookup(a)));
  CHECK(std::count(want.begin(), want.end(), "") > 0);
  CHECK(std::count(want.begin(), want.end(), "") < static_cast<long>(want.size()));

  // A fresh matcher, so the threads also race to fill the sets' lazily built DFA states.
  m = MustBuild(entries);
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        got[t].clear();
        for (const auto& a : addresses) got[t].push_back(Describe(m->Lookup(a)));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(got[t] == want);
}

TEST_CASE("lookups agree with CanonicalAddress", "[matcher]") {
  // Lookups with default options compare case-insensitively without calling
  // CanonicalAddress; entries go through it. Both must agree on every byte.
  std::vector<std::string> raw = {"MiXeD@Case.ORG",
                                  "ÄÖÜ@Ümlaut.de",
                                  "a@b",
                                  "@",
                                  "Z[@\\]^_`{",
                                  "user+Tag@Dom.example",
                                  std::string("nul\0byte@x", 10)};
  std::string all_bytes;
  for (int c = 1; c < 256; ++c) all_bytes += static_cast<char>(c);
  raw.push_back(all_bytes);
  std::vector<Entry> entries;
  for (const auto& r : raw) entries.push_back(RawExact(CanonicalAddress(r)));
  auto m = MustBuild(entries);
  for (const auto& r : raw) {
    INFO(r);
    CHECK(Describe(m->Lookup(r)) == "exact " + CanonicalAddress(r));
  }
}

TEST_CASE("exact table holds many entries", "[matcher]") {
  std::vector<Entry> entries;
  for (int i = 0; i < 100000; ++i) entries.push_back(Exact("u" + std::to_string(i) + "@d.org"));
  auto m = MustBuild(entries);
  CHECK(m->exact_count() == 100000);
  for (int i = 0; i < 100000; i += 997) {
    CHECK(Describe(m->Lookup("U" + std::to_string(i) + "@D.org")) ==
          "exact u" + std::to_string(i) + "@d.org");
    CHECK_FALSE(m->Lookup("u" + std::to_string(i) + "@d.orgx"));
  }
}

}  // namespace
}  // namespace compd

namespace compd {
namespace {

TEST_CASE("patterns equal but for case: the matcher keeps what rspamd keeps", "[matcher]") {
  // rspamd drops a map key equal, but for case, to an earlier one; compd's files are sorted,
  // so `/^A@x$/` stays and `/^a@x$/` goes, in rspamd and in the matcher alike.
  std::vector<Entry> entries(2);
  REQUIRE(ParseEntry("/^a@x$/", &entries[0]).ok());
  REQUIRE(ParseEntry("/^A@x$/", &entries[1]).ok());
  std::shared_ptr<const Matcher> m;
  REQUIRE(Matcher::Build(entries, &m).ok());
  CHECK(m->pattern_count() == 1);
  CHECK(m->Lookup("A@x"));
  CHECK_FALSE(m->Lookup("a@x"));
  CHECK(FormatPatternMap(entries).find("/^a@x$/") == std::string::npos);
}

}  // namespace
}  // namespace compd

namespace compd {
namespace {

// Apply must answer exactly as a snapshot built from scratch from the same entries: same
// lookups, same texts to write out, same counts. Random adds and removes over a small
// universe (so that removals and re-additions collide), with and without canon options
// (several entries per key), in batches large enough to cross the compaction threshold.
void CheckApplyAgainstBuild(const Matcher::Options& options, size_t base_size, size_t rounds,
                            size_t batch, unsigned seed, int domains = 300) {
  std::mt19937 rng(seed);
  std::vector<Entry> universe;
  const char* locals[] = {"a", "b", "j.o.e", "joe", "joe+x", "joe+y", "Mix", "q+1"};
  for (int d = 0; d < domains; ++d) {
    for (const char* l : locals) {
      universe.push_back(Exact(std::string(l) + "@d" + std::to_string(d) + ".example"));
    }
  }
  universe.push_back(RawExact("Upper@Case.example"));  // not canonical: still found
  for (int i = 0; i < 6; ++i) universe.push_back(Pattern("^p" + std::to_string(i) + "[0-9]+@"));
  universe.push_back(Pattern("^P0[0-9]+@"));  // equal to ^p0... but for case: rspamd drops it

  std::vector<bool> present(universe.size(), false);
  std::vector<Entry> initial;
  for (size_t i = 0; i < base_size && i < universe.size(); ++i) {
    present[i * 7 % universe.size()] = true;
  }
  for (size_t i = 0; i < universe.size(); ++i) {
    if (present[i]) initial.push_back(universe[i]);
  }
  std::shared_ptr<const Matcher> m = MustBuild(initial, options);
  bool compacted = false;
  for (size_t round = 0; round < rounds; ++round) {
    std::vector<Entry> added, removed;
    for (size_t k = 0; k < batch; ++k) {
      const size_t i = rng() % universe.size();
      // Sometimes a no-op: adding what is there or removing what is not.
      const bool add = rng() % 3 == 0 ? present[i] : !present[i];
      (add ? added : removed).push_back(universe[i]);
    }
    // Removals first, then additions, as Apply takes them.
    for (const Entry& e : removed) {
      present[static_cast<size_t>(std::find(universe.begin(), universe.end(), e) -
                                  universe.begin())] = false;
    }
    for (const Entry& e : added) {
      present[static_cast<size_t>(std::find(universe.begin(), universe.end(), e) -
                                  universe.begin())] = true;
    }
    std::shared_ptr<const Matcher> next;
    const Status s = m->Apply(added, removed, &next);
    INFO(s.ToString());
    REQUIRE(s.ok());
    m = next;
    if (m->NeedsCompaction()) {
      // The overlay folded into a new table: the same answers, as checked below.
      REQUIRE(m->Compact(&next).ok());
      CHECK(next->overlay_size() == 0);
      CHECK_FALSE(next->NeedsCompaction());
      m = next;
      compacted = true;
    }

    std::vector<Entry> now;
    for (size_t i = 0; i < universe.size(); ++i) {
      if (present[i]) now.push_back(universe[i]);
    }
    std::shared_ptr<const Matcher> fresh = MustBuild(now, options);
    INFO("round " << round);
    REQUIRE(m->exact_count() == fresh->exact_count());
    REQUIRE(m->pattern_count() == fresh->pattern_count());
    REQUIRE(m->ExactTexts() == fresh->ExactTexts());
    REQUIRE(m->PatternTexts() == fresh->PatternTexts());
    // Every address of the universe, and variants the canon options fold together.
    for (size_t i = round % 3; i < universe.size(); i += 3) {
      if (universe[i].kind != EntryKind::kExact) continue;
      const std::string& a = universe[i].text;
      for (const std::string& probe : {a, "JOE+z" + a.substr(a.find('@')), "p3" + a}) {
        INFO(probe);
        REQUIRE(Describe(m->Lookup(probe)) == Describe(fresh->Lookup(probe)));
      }
    }
  }
  if (rounds * batch > 4 * 4096) CHECK(compacted);
}

TEST_CASE("Apply answers as a fresh build of the same entries", "[matcher][apply]") {
  SECTION("default options, small batches") { CheckApplyAgainstBuild({}, 3000, 25, 25, 1); }
  SECTION("subaddresses stripped and gmail dots: several entries per key") {
    Matcher::Options o;
    o.canon.strip_subaddress = true;
    o.canon.gmail_dots = true;
    CheckApplyAgainstBuild(o, 3000, 25, 25, 2);
  }
  SECTION("large batches compact the overlay") {
    CheckApplyAgainstBuild({}, 6000, 4, 6000, 3, 2000);
  }
  SECTION("large batches compact the overlay, with canon options") {
    Matcher::Options o;
    o.canon.strip_subaddress = true;
    o.canon.gmail_dots = true;
    CheckApplyAgainstBuild(o, 6000, 3, 6000, 5, 2000);
  }
  SECTION("from an empty map") { CheckApplyAgainstBuild({}, 0, 20, 50, 4); }
}

TEST_CASE("Apply leaves the snapshot it came from as it was", "[matcher][apply]") {
  auto m = MustBuild({Exact("a@x.example"), Exact("b@x.example"), Pattern("^spam")});
  std::shared_ptr<const Matcher> next;
  REQUIRE(m->Apply({Exact("c@x.example"), Pattern("^junk")},
                   {Exact("a@x.example"), Pattern("^spam")}, &next)
              .ok());
  CHECK(Describe(m->Lookup("a@x.example")) == "exact a@x.example");
  CHECK(Describe(m->Lookup("c@x.example")) == "");
  CHECK(Describe(m->Lookup("spam@y")) == "pattern /^spam/");
  CHECK(Describe(next->Lookup("A@x.example")) == "");
  CHECK(Describe(next->Lookup("C@X.example")) == "exact c@x.example");
  CHECK(Describe(next->Lookup("spam@y")) == "");
  CHECK(Describe(next->Lookup("junk@y")) == "pattern /^junk/");
  CHECK(next->exact_count() == 2);
  CHECK(m->exact_count() == 2);
}

TEST_CASE("Apply refuses a pattern that does not compile and changes nothing", "[matcher][apply]") {
  auto m = MustBuild({Exact("a@x.example")});
  std::shared_ptr<const Matcher> next;
  const Status s = m->Apply({RawPattern("(")}, {}, &next);
  CHECK(s.IsInvalid());
  CHECK(s.message().find("/(/") != std::string::npos);
  CHECK(Describe(m->Lookup("a@x.example")) == "exact a@x.example");
}

}  // namespace
}  // namespace compd
