#include "proto/envelope.h"

#include "proto/text.h"

namespace taskq {

Status Envelope::Parse(std::string_view bytes) {
  MsgpackReader r(bytes);
  uint32_t n;
  if (r.Peek() != MsgType::kMap) return Bad("a message must be a msgpack map");
  if (!r.ReadMapHeader(&n)) return Bad("the message is truncated");
  if (n > kMaxEnvelopeFields) return Bad("the message has too many fields");
  for (uint32_t i = 0; i < n; ++i) {
    Field& f = fields_[i];
    if (!r.ReadStr(&f.key))
      return Bad(r.truncated() ? "the message is truncated" : "map keys must be strings");
    // The last value runs to the end of the message, so finding the keys
    // needs no walk through it. Encoders put the batch last, and walking
    // a batch twice (here, then to decode it) was a third of a reader's
    // time per task: its check waits for Finish, or the batch decoder
    // does it on the way.
    if (i + 1 == n && !r.at_end()) {
      f.raw = r.Rest();
      last_unchecked_ = true;
      break;
    }
    if (!r.Skip(&f.raw, kMaxDepth + kEnvelopeDepth)) return NotValid(f, r);
  }
  count_ = n;
  if (!last_unchecked_ && !r.at_end()) return Bad("the message has trailing bytes after the map");
  return Status::Ok();
}

Status Envelope::Finish() const {
  if (!last_unchecked_) return Status::Ok();
  const Field& f = fields_[count_ - 1];
  MsgpackReader r(f.raw);
  if (!r.Skip(nullptr, kMaxDepth + kEnvelopeDepth)) return NotValid(f, r);
  if (!r.at_end()) return Bad("the message has trailing bytes after the map");
  return Status::Ok();
}

Status Envelope::NotValid(const Field& f, const MsgpackReader& r) {
  return Bad(r.truncated()
                 ? "the message is truncated"
                 : "field '" + Clip(f.key) + "' is not valid msgpack or nests too deeply");
}

Status ItemReader::TooShort(uint32_t min_elements) const {
  return Bad(std::string("each ") + what_ + " must be an array of at least " +
             std::to_string(min_elements) + " elements");
}

Status ItemReader::NotA(const char* want) const {
  return Bad(std::string("element ") + std::to_string(read_) + " of a " + what_ + " must be " +
             want);
}

Status ItemReader::Said(const char* before, const char* after) const {
  return Bad(before + std::string(what_) + after);
}

std::string Envelope::Clip(std::string_view s) { return taskq::Clip(s, 64, ""); }

}  // namespace taskq
