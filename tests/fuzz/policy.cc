// Fuzz target: the policy-protocol request parser (PolicyParser) and what a request means
// (EvaluatePolicyRequest on a Tripwire with a small map), as compd-milter's policy listener
// runs them on every byte a client sends.
//
// Besides "no crash, no read past the input" (ASan, libstdc++ assertions) it checks:
//  - the requests and the error do not depend on how the bytes arrive: all at once and
//    one byte at a time give the same requests, then the same error message;
//  - every request respects the bounds: at most max_attributes names, each non-empty,
//    unique, of [A-Za-z0-9_.-]; no LF or NUL in a value; no more bytes than
//    max_request_bytes; the parser never consumes more than it was given;
//  - an error names its place ("request N, line M: ...") and holds no control character,
//    so it can go into a log line and the one-line answer;
//  - every answer fits on one `action=` line (FormatPolicyReply adds the only newlines),
//    and every event is recorded with source "policy" and serialises to JSON;
//  - DecodeEximEscapes never makes a value longer.
// Each input runs twice: with small limits (so the bounds are reached within -max_len) and
// with the defaults.
#include "compd/mta/policy.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compd/map/entry.h"
#include "compd/map/matcher.h"
#include "compd/mta/tripwire.h"
#include "fuzz_check.h"

namespace {

using compd_fuzz::Escaped;
using compd_fuzz::HasControl;

struct Outcome {
  std::vector<compd::PolicyRequest> requests;
  std::string error;  // empty: no error
};

Outcome Parse(std::string_view in, const compd::PolicyLimits& limits, bool bytewise) {
  Outcome out;
  compd::PolicyParser parser(limits);
  size_t step = bytewise ? 1 : in.size();
  for (size_t pos = 0; pos < in.size();) {
    std::string_view chunk = in.substr(pos, step);
    while (!chunk.empty()) {
      size_t consumed = 0;
      bool complete = false;
      compd::Status s = parser.Feed(chunk, &consumed, &complete);
      FUZZ_CHECK(consumed <= chunk.size());
      chunk.remove_prefix(consumed);
      if (!s.ok()) {
        FUZZ_CHECK_MSG(s.IsInvalid(), s.ToString());
        FUZZ_CHECK(!complete);
        out.error = s.message();
        return out;
      }
      if (complete) {
        out.requests.push_back(parser.TakeRequest());
        FUZZ_CHECK(parser.requests() == out.requests.size());
      } else {
        FUZZ_CHECK(chunk.empty());  // an incomplete request has taken every byte
      }
    }
    pos += step;
  }
  return out;
}

void CheckRequest(const compd::PolicyRequest& r, const compd::PolicyLimits& limits) {
  FUZZ_CHECK(!r.attributes.empty());
  FUZZ_CHECK(r.attributes.size() <= limits.max_attributes);
  size_t bytes = 1;  // the empty line
  for (size_t i = 0; i < r.attributes.size(); ++i) {
    const auto& [name, value] = r.attributes[i];
    FUZZ_CHECK(!name.empty());
    for (char c : name) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.';
      FUZZ_CHECK_MSG(ok, Escaped(name));
    }
    FUZZ_CHECK_MSG(value.find('\n') == std::string::npos, Escaped(value));
    FUZZ_CHECK_MSG(value.find('\0') == std::string::npos, Escaped(value));
    FUZZ_CHECK(name.size() + 1 + value.size() + 1 <= limits.max_line_bytes);
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK_MSG(r.attributes[j].first != name, name);
    FUZZ_CHECK(r.Get(name) == value);
    bytes += name.size() + 1 + value.size() + 1;
    FUZZ_CHECK(compd::DecodeEximEscapes(value).size() <= value.size());
  }
  FUZZ_CHECK(bytes <= limits.max_request_bytes);
}

// A tripwire over a two-entry map; events checked as they are recorded.
struct World {
  World() {
    std::vector<compd::Entry> entries;
    for (const char* text : {"listed@bad.example", "/^probe[0-9]+@test\\.example$/i"}) {
      compd::Entry e;
      if (compd::ParseEntry(text, &e).ok()) entries.push_back(e);
    }
    compd::Matcher::Build(entries, &matcher);
    compd::TripwireOptions options;
    options.hostname = "fuzz";
    compd::ParseCidrList("192.0.2.0/24", &options.trusted_networks);
    compd::TripwireOutlets outlets;
    outlets.snapshot = [this] { return matcher; };
    outlets.events = [](compd::Event e) {
      FUZZ_CHECK(e.source == "policy");
      FUZZ_CHECK(!e.account.empty());
      FUZZ_CHECK(!e.ToJson().empty());
    };
    outlets.messages = [](const compd::MessageRecord& m) { FUZZ_CHECK(!m.account.empty()); };
    tripwire = std::make_unique<compd::Tripwire>(options, outlets);
  }
  std::shared_ptr<const compd::Matcher> matcher;
  std::unique_ptr<compd::Tripwire> tripwire;
};

void Run(std::string_view in, const compd::PolicyLimits& limits, const World& world) {
  Outcome whole = Parse(in, limits, false);
  Outcome bytes = Parse(in, limits, true);
  FUZZ_CHECK(whole.requests.size() == bytes.requests.size());
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    FUZZ_CHECK(whole.requests[i].attributes == bytes.requests[i].attributes);
  }
  FUZZ_CHECK_MSG(whole.error == bytes.error, whole.error + " | " + bytes.error);
  if (!whole.error.empty()) {
    FUZZ_CHECK_MSG(whole.error.rfind("request ", 0) == 0, whole.error);
    FUZZ_CHECK_MSG(whole.error.find(", line ") != std::string::npos, whole.error);
    FUZZ_CHECK_MSG(!HasControl(whole.error), Escaped(whole.error));
  }
  for (const compd::PolicyRequest& r : whole.requests) {
    CheckRequest(r, limits);
    std::string action;
    compd::Status s = compd::EvaluatePolicyRequest(*world.tripwire, r, &action);
    if (!s.ok()) {
      FUZZ_CHECK_MSG(s.IsInvalid(), s.ToString());
      FUZZ_CHECK_MSG(!HasControl(s.message()), Escaped(s.message()));
      continue;
    }
    FUZZ_CHECK(!action.empty());
    const std::string reply = compd::FormatPolicyReply(action);
    FUZZ_CHECK(reply.rfind("action=", 0) == 0);
    FUZZ_CHECK_MSG(reply.find('\n') == reply.size() - 2, Escaped(reply));
    FUZZ_CHECK(reply.find('\0') == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const World world;
  const std::string_view in = compd_fuzz::AsText(data, size);
  compd::PolicyLimits small;
  small.max_line_bytes = 256;
  small.max_attributes = 8;
  small.max_request_bytes = 1024;
  Run(in, small, world);
  Run(in, compd::PolicyLimits(), world);
  return 0;
}
