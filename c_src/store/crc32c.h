/*
 * crc32c.h: CRC-32C (Castagnoli), the checksum of every record the store
 * writes to disk, so that a torn or corrupted record is recognised as such.
 */
#ifndef GEN_CNODE_CRC32C_H
#define GEN_CNODE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over data; start with crc = 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
