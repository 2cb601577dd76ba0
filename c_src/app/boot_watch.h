/*
 * boot_watch.h: the end of stdin while the node boots. Under a port owner
 * (--watch-stdin) the node stops when its stdin closes, which the loop sees
 * once the node runs; the boot before it (a big store's recovery, modules'
 * init at --start) can take minutes, and an owner gone meanwhile must not
 * leave the node behind for that long. So a thread watches stdin during the
 * boot: at its end the process exits at once (status 1, logged), as if
 * killed, which a durable store survives by design. Stopped before the loop
 * takes stdin over. Main thread only.
 */
#ifndef GEN_CNODE_BOOT_WATCH_H
#define GEN_CNODE_BOOT_WATCH_H

/* 0, or -1 when no thread could be started (the boot goes on, unwatched). */
int boot_watch_start(void);
/* Stop watching (nothing if not started). */
void boot_watch_stop(void);

#endif
