#include "master/journal_frame.h"

#include <algorithm>
#include <cstring>

#include "master/crc32c.h"

namespace taskq {
namespace {

constexpr std::size_t kLegacyHeaderBytes = 8;
// A format-1 file starts with its header record, which is this small.
constexpr uint32_t kLegacyMaxHeader = 256;

void PutU32(char* p, uint32_t v) {
  std::memcpy(p, &v, 4);  // little-endian hosts only (x86-64, arm64): the format says LE
}

uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint32_t HeaderCrc(uint64_t offset, uint32_t length, uint32_t payload_crc) {
  char b[16];
  std::memcpy(b, &offset, 8);
  PutU32(b + 8, length);
  PutU32(b + 12, payload_crc);
  return Crc32c(b, sizeof b);
}

}  // namespace

void AppendFrame(std::string* out, uint64_t offset, std::string_view payload) {
  const uint32_t length = static_cast<uint32_t>(payload.size());
  const uint32_t payload_crc = Crc32c(payload.data(), payload.size());
  char h[kFrameHeaderBytes];
  PutU32(h, kFrameMagic);
  PutU32(h + 4, length);
  PutU32(h + 8, payload_crc);
  PutU32(h + 12, HeaderCrc(offset, length, payload_crc));
  out->append(h, sizeof h);
  out->append(payload);
}

FrameReader::FrameReader(std::string_view data, bool newest, uint32_t max_payload)
    : data_(data), newest_(newest), max_payload_(max_payload) {
  // A format-1 file opens with a whole small header record; a framed one
  // with the magic, which as a format-1 length is far too long, so even a
  // framed file whose first bytes are damaged is never taken for one.
  uint32_t length;
  legacy_ = LegacyWholeAt(0, &length) && length <= kLegacyMaxHeader;
}

FrameReader::Piece FrameReader::Next() {
  if (pos_ >= data_.size()) return Piece{Kind::kEnd, pos_, pos_, {}};
  return legacy_ ? NextLegacy() : NextFramed();
}

FrameReader::Piece FrameReader::NextFramed() {
  const std::size_t begin = pos_;
  uint32_t length;
  if (WholeAt(begin, &length)) {
    pos_ = begin + kFrameHeaderBytes + length;
    return Piece{Kind::kRecord, begin, pos_, data_.substr(begin + kFrameHeaderBytes, length)};
  }
  pos_ = NextWhole(begin + 1);
  if (pos_ == data_.size() && newest_ && TornAt(begin)) return Piece{Kind::kTorn, begin, pos_, {}};
  return Piece{Kind::kDamaged, begin, pos_, {}};
}

bool FrameReader::WholeAt(std::size_t off, uint32_t* length) const {
  if (data_.size() - off < kFrameHeaderBytes) return false;
  const char* h = data_.data() + off;
  if (GetU32(h) != kFrameMagic) return false;
  const uint32_t len = GetU32(h + 4), payload_crc = GetU32(h + 8);
  if (GetU32(h + 12) != HeaderCrc(off, len, payload_crc)) return false;
  if (len > max_payload_ || len > data_.size() - off - kFrameHeaderBytes) return false;
  if (Crc32c(h + kFrameHeaderBytes, len) != payload_crc) return false;
  *length = len;
  return true;
}

// What an append cut short leaves, and nothing else: the start of a header
// (its magic intact), or a header that checks out and promises more bytes
// than the file has. A record of the right length whose CRC fails, zeros,
// or garbage are damage: none of them is what a torn write looks like, and
// calling them torn would cut off what may have been acknowledged.
bool FrameReader::TornAt(std::size_t off) const {
  const std::size_t left = data_.size() - off;
  const char* h = data_.data() + off;
  char magic[4];
  PutU32(magic, kFrameMagic);
  if (std::memcmp(h, magic, std::min<std::size_t>(left, 4)) != 0) return false;
  if (left < kFrameHeaderBytes) return true;
  const uint32_t len = GetU32(h + 4);
  return GetU32(h + 12) == HeaderCrc(off, len, GetU32(h + 8)) && len <= max_payload_ &&
         len > left - kFrameHeaderBytes;
}

// The offset of the first whole record at or after from, or the file's size.
// Only a magic is looked at closely, so a scan costs little more than memchr.
std::size_t FrameReader::NextWhole(std::size_t from) const {
  const char first = static_cast<char>(kFrameMagic & 0xff);
  uint32_t length;
  while (from < data_.size()) {
    const void* hit = std::memchr(data_.data() + from, first, data_.size() - from);
    if (!hit) break;
    from = static_cast<std::size_t>(static_cast<const char*>(hit) - data_.data());
    if (WholeAt(from, &length)) return from;
    ++from;
  }
  return data_.size();
}

// Format 1 has no magic to look for: a damaged record ends the file.
FrameReader::Piece FrameReader::NextLegacy() {
  const std::size_t begin = pos_, left = data_.size() - pos_;
  uint32_t length;
  if (LegacyWholeAt(begin, &length)) {
    pos_ = begin + kLegacyHeaderBytes + length;
    return Piece{Kind::kRecord, begin, pos_, data_.substr(begin + kLegacyHeaderBytes, length)};
  }
  pos_ = data_.size();
  const bool cut_short =
      left < kLegacyHeaderBytes || (GetU32(data_.data() + begin) <= max_payload_ &&
                                    GetU32(data_.data() + begin) > left - kLegacyHeaderBytes);
  return Piece{newest_ && cut_short ? Kind::kTorn : Kind::kDamaged, begin, pos_, {}};
}

bool FrameReader::LegacyWholeAt(std::size_t off, uint32_t* length) const {
  if (data_.size() - off < kLegacyHeaderBytes) return false;
  const char* h = data_.data() + off;
  const uint32_t len = GetU32(h);
  if (len > max_payload_ || len > data_.size() - off - kLegacyHeaderBytes) return false;
  if (GetU32(h + 4) != Crc32c(h + kLegacyHeaderBytes, len)) return false;
  *length = len;
  return true;
}

}  // namespace taskq
