/*
 * log.h: the node's log, one line per event on stderr:
 *
 *   2026-11-27T19:05:01.123Z kv@127.0.0.1 info: connected to me@127.0.0.1
 *
 * the time (UTC, ISO 8601, milliseconds), the node's name (log_set_node;
 * "gen_cnode" until set), the level, a colon and the message; each line is
 * written whole, in one write. A flood of bad input from a peer is capped (at
 * most LOG_BURST lines a second; the rest are counted and reported once, in
 * one warning line, when the next second's first line comes), so that logging
 * never becomes the way a peer takes the node down. Errors are never held
 * back.
 *
 * Levels, most severe first: error, warning, notice (the node's own life:
 * ready, stopping, a durable store recovered), info, debug. A line is written
 * when its level is at or above the one set (log_set_level; info by default).
 *
 * The public API's gcn_log_level (GCN_LOG_ERROR .. GCN_LOG_DEBUG, 0 to 3) is
 * mapped by log_level_of_public, which gcn_log calls; log_msg takes values
 * below LOG_ERROR as those too.
 *
 * Any thread may log (one lock keeps the cap's counters and each line whole),
 * except a child forked by a threaded process, which uses log_forked.
 */
#ifndef GEN_CNODE_LOG_H
#define GEN_CNODE_LOG_H

#include <stdio.h>
#include <time.h>

/* Ordered: a lower value is more severe. 0..3 are left to the public levels. */
enum log_level { LOG_ERROR = 10, LOG_WARNING = 20, LOG_NOTICE = 30, LOG_INFO = 40, LOG_DEBUG = 50 };

#define LOG_BURST 50

/* GCN_LOG_ERROR, _WARNING, _INFO, _DEBUG (0..3) -> LOG_ERROR, _WARNING,
 * _INFO, _DEBUG; an enum log_level stays as it is. */
enum log_level log_level_of_public(int level);
/* "error", "warning", "notice", "info", "debug" -> 0 and *level; -1 otherwise. */
int log_level_parse(const char *name, enum log_level *level);
const char *log_level_name(enum log_level level);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* The node name every line carries (copied; NULL: "gen_cnode" again). */
void log_set_node(const char *name);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a child forked by the node (a compaction): the same line, written with
 * one write(2), with no lock taken and no cap (a lock another thread held at
 * the fork would never be released in the child). */
void log_forked(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Test hooks: where lines go (NULL: stderr again) and the clock they are
 * stamped with and capped by (NULL: CLOCK_REALTIME again). */
void log_set_sink(FILE *sink);
/* The descriptor lines go to (for a forked child that closes the others). */
int log_fd(void);
void log_set_clock(void (*now)(struct timespec *ts));

#define log_error(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
