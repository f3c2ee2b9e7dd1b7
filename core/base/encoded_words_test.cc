#include "compd/base/encoded_words.h"

#include <catch2/catch.hpp>
#include <string>

namespace compd {
namespace {

TEST_CASE("encoded words decode to UTF-8", "[encoded_words]") {
  const std::pair<const char*, const char*> kCases[] = {
      {"=?utf-8?B?SsO2cmc=?=", "J\xc3\xb6rg"},
      {"=?UTF-8?q?J=C3=B6rg_M?=", "J\xc3\xb6rg M"},
      {"=?iso-8859-1?Q?J=F6rg?=", "J\xc3\xb6rg"},
      {"=?utf-8*en?Q?Hi?=", "Hi"},
      {"Dear =?us-ascii?Q?PayPal?= user", "Dear PayPal user"},
  };
  for (const auto& [encoded, decoded] : kCases) {
    INFO(encoded);
    CHECK(DecodeEncodedWords(encoded) == decoded);
  }
}

TEST_CASE("blanks between adjacent encoded words are dropped, others kept", "[encoded_words]") {
  CHECK(DecodeEncodedWords("=?utf-8?Q?a?= \r\n =?utf-8?Q?b?=") == "ab");
  CHECK(DecodeEncodedWords("=?utf-8?Q?a?= x =?utf-8?Q?b?=") == "a x b");
}

TEST_CASE("what cannot be decoded stays as written", "[encoded_words]") {
  for (const std::string s : {"=?koi8-r?B?8NLJ18XU?=", "=?utf-8?X?abc?=", "=?utf-8?B?abc",
                              "=??B?abc?=", "=?utf-8 ?B?abc?=", "plain text", ""}) {
    CAPTURE(s);
    CHECK(DecodeEncodedWords(s) == s);
  }
}

TEST_CASE("a subject reads the same from a header and from a log line", "[encoded_words]") {
  CHECK(SubjectText("  =?utf-8?B?SsO2cmc=?=\r\n\t=?utf-8?Q?_M?=  ") == "J\xc3\xb6rg M");
  CHECK(SubjectText(" ZYaeD,\r\n X ") == "ZYaeD, X");
  CHECK(SubjectText("a\tb\x01"
                    "c\x7f") == "a b c");
  CHECK(SubjectText("\t\x01 x") == "x");
  CHECK(SubjectText(" \r\n ") == "");
  CHECK(SubjectText("abcdef", 3) == "abc");
}

}  // namespace
}  // namespace compd
