/*
 * log.h: the node's log, one line per event on stderr, each prefixed with the
 * program name and a level. A flood of bad input from a peer is capped (at most
 * LOG_BURST lines a second; the rest are counted and reported once), so that
 * logging never becomes the way a peer takes the node down.
 */
#ifndef GEN_CNODE_LOG_H
#define GEN_CNODE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

#define LOG_BURST 50

void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
