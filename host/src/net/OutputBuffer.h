#pragma once
// A connection's unsent output: bytes appended at the back, consumed from the
// front. Holds no heap memory while empty, and gives back large blocks once
// drained, so idle connections stay small.

#include <cstddef>
#include <string>
#include <string_view>

namespace protohost::host {

class OutputBuffer {
 public:
  bool empty() const { return head_ == data_.size(); }
  std::size_t size() const { return data_.size() - head_; }
  std::string_view front() const { return std::string_view(data_).substr(head_); }

  void append(std::string_view bytes) {
    if (empty()) clear();
    else if (head_ > 0 && head_ >= data_.size() / 2) compact();
    data_.append(bytes);
  }

  /// Drops @p n bytes from the front (after a successful send).
  void consume(std::size_t n) {
    head_ += n;
    if (empty()) clear();
  }

  /// Drops everything and releases the memory.
  void release() {
    std::string().swap(data_);
    head_ = 0;
  }

 private:
  void clear() {
    head_ = 0;
    if (data_.capacity() > kKeepCapacity) std::string().swap(data_);
    else data_.clear();
  }
  void compact() {
    data_.erase(0, head_);
    head_ = 0;
  }

  static constexpr std::size_t kKeepCapacity = 0;  // release every drained buffer
  std::string data_;
  std::size_t head_ = 0;
};

}  // namespace protohost::host
