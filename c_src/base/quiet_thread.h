/*
 * quiet_thread.h: starting a thread that takes no signal. The node's
 * threads (workers, dials, the log's fsync, the stdin watch) leave
 * SIGINT and SIGTERM to the main thread, and a module's handler never
 * runs on them: each starts with every signal blocked.
 */
#ifndef GEN_CNODE_QUIET_THREAD_H
#define GEN_CNODE_QUIET_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread (the caller's
 * mask is left as it was): 0, or pthread_create's error number. */
int quiet_thread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*run)(void *), void *arg);

#endif
