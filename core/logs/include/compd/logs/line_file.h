// LineFile: the lines of one log file, plain or gzip (recognised by its first bytes, not
// its name), read in large blocks; a line is a view into the file's buffer, valid until
// the next ReadLine.
//
// Owns the file descriptor (or zlib stream) and the buffer. Not thread-safe.
#ifndef COMPD_LOGS_LINE_FILE_H_
#define COMPD_LOGS_LINE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "compd/base/status.h"

namespace compd {

class LineFile {
 public:
  // kNotFound when the file does not exist, kIoError when it cannot be opened; the
  // message names the path.
  static Status Open(const std::string& path, std::unique_ptr<LineFile>* out);
  ~LineFile();
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;

  // The next line without its line end (`\n`, `\r\n`); a last line without a newline
  // counts. False at the end or on a read error (then status() says which).
  bool ReadLine(std::string_view* line);
  uint64_t line_number() const { return line_number_; }  // of the line last returned
  const Status& status() const { return status_; }
  const std::string& path() const { return path_; }
  int64_t mtime_ms() const { return mtime_ms_; }

 private:
  LineFile() = default;
  // Moves the unread tail to the front and reads more; false when nothing more came.
  bool Fill();

  std::string path_;
  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile when compressed
  int64_t mtime_ms_ = 0;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;  // unread data is [begin_, end_)
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
  Status status_;
};

}  // namespace compd

#endif  // COMPD_LOGS_LINE_FILE_H_
