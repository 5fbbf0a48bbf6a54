// Blob: bytes kept in 16 bytes of memory when they fit in 15 (a small task
// argument such as an integer always does), on the heap otherwise. The master
// keeps one per queued task, so its size is most of the per-task overhead.
#ifndef TASKQ_MASTER_BLOB_H_
#define TASKQ_MASTER_BLOB_H_

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

namespace taskq {

class Blob {
 public:
  static constexpr std::size_t kInline = 15;

  Blob() { Clear(); }
  explicit Blob(std::string_view bytes) { Assign(bytes); }
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;
  Blob(Blob&& o) noexcept {
    std::memcpy(raw_, o.raw_, sizeof raw_);
    o.Clear();
  }
  Blob& operator=(Blob&& o) noexcept {
    if (this != &o) {
      Release();
      std::memcpy(raw_, o.raw_, sizeof raw_);
      o.Clear();
    }
    return *this;
  }
  ~Blob() { Release(); }

  std::string_view view() const {
    if (on_heap()) return std::string_view(heap_ptr(), heap_size());
    return std::string_view(raw_, static_cast<uint8_t>(raw_[kInline]));
  }
  // Bytes of heap memory held (0 when inline).
  std::size_t heap_bytes() const { return on_heap() ? heap_size() : 0; }

 private:
  static constexpr uint8_t kHeapMark = 0xff;

  bool on_heap() const { return static_cast<uint8_t>(raw_[kInline]) == kHeapMark; }
  char* heap_ptr() const {
    char* p;
    std::memcpy(&p, raw_, sizeof p);
    return p;
  }
  uint32_t heap_size() const {
    uint32_t n;
    std::memcpy(&n, raw_ + 8, sizeof n);
    return n;
  }
  void Clear() { std::memset(raw_, 0, sizeof raw_); }
  void Assign(std::string_view bytes) {
    Clear();
    if (bytes.size() <= kInline) {
      std::memcpy(raw_, bytes.data(), bytes.size());
      raw_[kInline] = static_cast<char>(bytes.size());
      return;
    }
    char* p = new char[bytes.size()];
    std::memcpy(p, bytes.data(), bytes.size());
    uint32_t n = static_cast<uint32_t>(bytes.size());
    std::memcpy(raw_, &p, sizeof p);
    std::memcpy(raw_ + 8, &n, sizeof n);
    raw_[kInline] = static_cast<char>(kHeapMark);
  }
  void Release() {
    if (on_heap()) delete[] heap_ptr();
  }

  char raw_[16];
};
static_assert(sizeof(Blob) == 16);

}  // namespace taskq

#endif  // TASKQ_MASTER_BLOB_H_
