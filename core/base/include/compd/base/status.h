// Status: the outcome of an operation that can fail, in the LevelDB style.
//
// Owns nothing but a code and a message. Immutable after construction; safe to copy
// between threads. "Not found" is a code of its own so that a Redis outage
// (kUnavailable) can never be mistaken for "not listed".
#ifndef COMPD_BASE_STATUS_H_
#define COMPD_BASE_STATUS_H_

#include <string>
#include <utility>

namespace compd {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,     // the thing asked for does not exist; not an error of the system
    kExists,       // the thing to create exists already
    kInvalid,      // bad input: the message names the place and the reason
    kUnavailable,  // a server (Redis) could not be reached or answered with an error
    kIoError,      // a local file could not be read or written
    kInternal,     // a bug or an impossible state
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Exists(std::string msg) { return Status(Code::kExists, std::move(msg)); }
  static Status Invalid(std::string msg) { return Status(Code::kInvalid, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsExists() const { return code_ == Code::kExists; }
  bool IsInvalid() const { return code_ == Code::kInvalid; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsIoError() const { return code_ == Code::kIoError; }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid: map.txt:17: ..." style, for logs.
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace compd

#endif  // COMPD_BASE_STATUS_H_
