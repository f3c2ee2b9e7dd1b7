#include "compd/base/status.h"

namespace compd {

std::string Status::ToString() const {
  const char* name = "ok";
  switch (code_) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      name = "not found";
      break;
    case Code::kExists:
      name = "exists";
      break;
    case Code::kInvalid:
      name = "invalid";
      break;
    case Code::kUnavailable:
      name = "unavailable";
      break;
    case Code::kIoError:
      name = "io error";
      break;
    case Code::kInternal:
      name = "internal error";
      break;
  }
  return message_.empty() ? std::string(name) : std::string(name) + ": " + message_;
}

}  // namespace compd
