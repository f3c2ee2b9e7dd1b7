#include "compd/logs/line_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace compd {

namespace {

constexpr size_t kBlock = 1 << 18;

}  // namespace

Status LineFile::Open(const std::string& path, std::unique_ptr<LineFile>* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string msg = path + ": " + std::strerror(errno);
    return errno == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    std::string msg = path + ": " + (S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(errno));
    close(fd);
    return Status::IoError(msg);
  }
  std::unique_ptr<LineFile> f(new LineFile());
  f->path_ = path;
  f->mtime_ms_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  unsigned char magic[2] = {0, 0};
  ssize_t n = pread(fd, magic, 2, 0);
  if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    gzFile gz = gzdopen(fd, "rb");
    if (gz == nullptr) {
      close(fd);
      return Status::IoError(path + ": cannot start gzip decompression");
    }
    gzbuffer(gz, kBlock);
    f->gz_ = gz;
  } else {
    f->fd_ = fd;
  }
  f->cap_ = kBlock;
  f->buf_.reset(new char[f->cap_]);
  *out = std::move(f);
  return Status::Ok();
}

LineFile::~LineFile() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
  if (fd_ >= 0) close(fd_);
}

bool LineFile::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_) {  // one line longer than the buffer: grow
    size_t cap = cap_ * 2;
    std::unique_ptr<char[]> bigger(new char[cap]);
    std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  for (;;) {
    ssize_t n;
    if (gz_ != nullptr) {
      int r =
          gzread(static_cast<gzFile>(gz_), buf_.get() + end_, static_cast<unsigned>(cap_ - end_));
      if (r < 0) {
        int errnum = 0;
        const char* msg = gzerror(static_cast<gzFile>(gz_), &errnum);
        status_ = Status::IoError(path_ + ": " + (msg != nullptr ? msg : "gzip error"));
        eof_ = true;
        return false;
      }
      n = r;
      if (n == 0) {
        int errnum = 0;
        const char* msg = gzerror(static_cast<gzFile>(gz_), &errnum);
        if (errnum != Z_OK && errnum != Z_BUF_ERROR) {
          status_ = Status::IoError(path_ + ": " + (msg != nullptr ? msg : "gzip error"));
        } else if (errnum == Z_BUF_ERROR) {
          status_ = Status::IoError(path_ + ": truncated gzip file");
        }
      }
    } else {
      n = read(fd_, buf_.get() + end_, cap_ - end_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status_ = Status::IoError(path_ + ": " + std::strerror(errno));
        eof_ = true;
        return false;
      }
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += static_cast<size_t>(n);
    return true;
  }
}

bool LineFile::ReadLine(std::string_view* line) {
  size_t scanned = begin_;
  for (;;) {
    const char* start = buf_.get() + begin_;
    const char* nl =
        static_cast<const char*>(std::memchr(buf_.get() + scanned, '\n', end_ - scanned));
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(nl - start);
      begin_ += len + 1;
      if (len > 0 && start[len - 1] == '\r') --len;
      *line = std::string_view(start, len);
      ++line_number_;
      return true;
    }
    size_t have = end_ - begin_;
    if (!Fill()) {
      if (end_ == begin_) return false;
      // The last line had no newline.
      size_t len = end_ - begin_;
      const char* s = buf_.get() + begin_;
      begin_ = end_;
      if (len > 0 && s[len - 1] == '\r') --len;
      *line = std::string_view(s, len);
      ++line_number_;
      return true;
    }
    scanned = begin_ + have;
  }
}

}  // namespace compd
