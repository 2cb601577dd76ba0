/*
 * bg_sync.h: an fdatasync off the loop, on a thread of its own, one at a
 * time, as Redis's bio thread syncs its log under everysec: a slow disk then
 * stalls that thread, not every server of the node.
 *
 * The thread syncs a duplicate of the descriptor it is given (dup), which it
 * closes when done, so the log may be closed or replaced meanwhile. The
 * duplicate shares the file's description, and Linux reports a writeback
 * error once per description: a caller that syncs the same file itself
 * waits for the sync in flight first (bg_sync_wait) and takes its result,
 * or the error could go to the one that did not look.
 */
#ifndef GEN_CNODE_BG_SYNC_H
#define GEN_CNODE_BG_SYNC_H

typedef struct bg_sync bg_sync;

/* The thread, waiting for work (with every signal blocked). NULL when it
 * cannot be made. */
bg_sync *bg_sync_start(void);
/* Sync fd's file on the thread: 0; 1 when a sync is still in flight (or
 * done and not yet collected), nothing posted; -1 with errno when fd cannot
 * be duplicated. */
int bg_sync_post(bg_sync *b, int fd);
/* The sync posted last, collected once: 1 when it is done (*error is 0 or
 * its errno), 0 when it still runs, -1 when none waits to be collected. */
int bg_sync_poll(bg_sync *b, int *error);
/* The same, waiting for it to end: 1 with *error, or -1 when none waits. */
int bg_sync_wait(bg_sync *b, int *error);
/* Wait for the sync in flight, stop the thread, free b (NULL: nothing). */
void bg_sync_stop(bg_sync *b);

#endif
