// CRC-32C (Castagnoli), as iSCSI, ext4 and leveldb use it, to tell a journal
// record that was torn or damaged from one that was written whole.
#ifndef TASKQ_MASTER_CRC32C_H_
#define TASKQ_MASTER_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace taskq {

// The CRC-32C of n bytes at data. Crc32c("123456789") == 0xe3069283.
uint32_t Crc32c(const void* data, std::size_t n);
// The portable table-driven path Crc32c falls back to without SSE 4.2
// (exposed so tests/crc32c_test.cc can check it against the hardware one).
uint32_t Crc32cPortable(const void* data, std::size_t n);

}  // namespace taskq

#endif  // TASKQ_MASTER_CRC32C_H_
