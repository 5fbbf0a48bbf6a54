// The framing of a journal segment file (journal.h): how one record's bytes
// are laid out, and a reader that finds every whole record in a file, tells
// a torn tail from damage, and resynchronises after damage. docs/JOURNAL.md
// describes the format in full.
//
// A frame is a 16-byte header, then the payload:
//   u32 magic        kFrameMagic, the bytes c1 54 51 d7 ("\xc1TQ\xd7")
//   u32 length       of the payload
//   u32 payload_crc  CRC-32C of the payload
//   u32 header_crc   CRC-32C of [u64 offset][u32 length][u32 payload_crc]
// all little-endian, where offset is where the frame starts in its file.
//
// Why each part: the magic lets a reader that met damage look for the next
// record (0xc1 is a byte msgpack never uses, so it only shows up inside
// strings and binaries); the header CRC lets it reject a false magic without
// reading a payload, and proves a length right before it is trusted; the
// offset in the header CRC means a copy of journal bytes inside a record (a
// task whose argument is a backup of a data dir) never checks out anywhere
// but where it was written.
//
// Files written before this framing (format 1: [u32 length][u32 CRC-32C]
// [payload], no magic) are still read, but cannot be resynchronised: damage
// in one skips the rest of that file.
//
// Thread: any; a reader is used by one thread at a time.
#ifndef TASKQ_MASTER_JOURNAL_FRAME_H_
#define TASKQ_MASTER_JOURNAL_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace taskq {

constexpr uint32_t kFrameMagic = 0xd75154c1;  // on disk: c1 54 51 d7
constexpr std::size_t kFrameHeaderBytes = 16;

// Appends payload to out, framed to start at byte offset of its file.
void AppendFrame(std::string* out, uint64_t offset, std::string_view payload);

// Reads the frames of one whole segment file, in order.
class FrameReader {
 public:
  enum class Kind {
    kRecord,   // a whole record: payload is valid
    kDamaged,  // bytes that hold no whole record; reading goes on after them
    kTorn,     // the start of a record, cut short by the end of the file
    kEnd,
  };
  struct Piece {
    Kind kind = Kind::kEnd;
    uint64_t begin = 0, end = 0;  // the bytes of the frame, or of the damage
    std::string_view payload;
  };

  // data: the whole file, which must outlive the reader. newest: the file
  // was being appended to when the master stopped, so its end may be torn;
  // in any other file a cut-short record is damage. max_payload: a longer
  // length is damage.
  FrameReader(std::string_view data, bool newest, uint32_t max_payload);

  // The next record, or the next damaged stretch (as long as it takes to
  // reach the next whole record, or the end of the file), or kEnd.
  Piece Next();
  // The file is in the format without magic (format 1).
  bool legacy() const { return legacy_; }

 private:
  Piece NextFramed();
  Piece NextLegacy();
  bool WholeAt(std::size_t off, uint32_t* length) const;
  bool TornAt(std::size_t off) const;
  std::size_t NextWhole(std::size_t from) const;
  bool LegacyWholeAt(std::size_t off, uint32_t* length) const;

  std::string_view data_;
  bool newest_;
  uint32_t max_payload_;
  bool legacy_;
  std::size_t pos_ = 0;
};

}  // namespace taskq

#endif  // TASKQ_MASTER_JOURNAL_FRAME_H_
