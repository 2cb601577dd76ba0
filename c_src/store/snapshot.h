/*
 * snapshot.h: a store's whole content in one file, written beside the log
 * and atomically put in place (a temporary file, fsync, rename, fsync of the
 * folder), so that a crash leaves either the old snapshot or the new one.
 *   "GCNSNAP1" [u64 generation][u64 entries]
 *   entries x [u32 key length][u32 value length][key][value]
 *   [u32 crc32c of all the bytes before it]
 * The generation is the number of the first log whose records are not in it.
 */
#ifndef GEN_CNODE_SNAPSHOT_H
#define GEN_CNODE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* 0, or -1 with err (path is then untouched). */
int snapshot_write(const char *path, uint64_t generation, const store *s, char *err, size_t errlen);

/* The generation in path's header: 0, or -1 (no such file, or no snapshot's
 * header). Only the header is read: for a file a finished write renamed. */
int snapshot_generation(const char *path, uint64_t *generation);

/* Load path into s: 0 and *generation; 1 when there is no such file;
 * -1 with err when it does not check (a snapshot is never half-used). */
int snapshot_read(const char *path, store *s, uint64_t *generation, char *err, size_t errlen);

#endif
