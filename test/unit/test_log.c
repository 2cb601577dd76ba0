/* test_log.c: the log's line format (UTC time with milliseconds, node name,
 * level), the level filter and its mapping of the public levels, the node
 * name, the per-second burst cap and its one-line report (--log-level is
 * test_options.c's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gen_cnode.h"
#include "log.h"
#include "unit.h"

/* A clock the tests set: log lines are stamped and capped by it. */
static struct timespec fake_now;
static void fake_clock(struct timespec *ts) { *ts = fake_now; }

/* What the log wrote since capture_start, as one string. */
static char *captured;
static size_t captured_len;
static FILE *capture;
static enum log_level saved_level;

static void capture_start(enum log_level level)
{
    saved_level = log_get_level();
    free(captured);
    captured = NULL;
    captured_len = 0;
    capture = open_memstream(&captured, &captured_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(capture);
    log_set_sink(capture);
    log_set_level(level);
}

static const char *capture_text(void)
{
    fflush(capture);
    return captured ? captured : "";
}

static void capture_stop(void)
{
    log_set_sink(NULL);
    log_set_clock(NULL);
    log_set_node(NULL);
    log_set_level(saved_level);
    fclose(capture);
    capture = NULL;
    free(captured);
    captured = NULL;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static size_t count_of(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return timegm(&tm);
}

static void test_line_format(void)
{
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 11, 27, 19, 5, 1), 123999999};
    log_set_clock(fake_clock);
    log_set_node("kv@127.0.0.1");
    log_info("connected to %s", "me@127.0.0.1");
    log_error("code %d", 7);
    CU_ASSERT_STRING_EQUAL(capture_text(),
                           "2026-11-27T19:05:01.123Z kv@127.0.0.1 info: connected to me@127.0.0.1\n"
                           "2026-11-27T19:05:01.123Z kv@127.0.0.1 error: code 7\n");
    capture_stop();
}

/* The date is worked out by hand: it agrees with strftime on gmtime_r over
 * leap days, century and year ends, and the epoch. */
static void test_timestamps_agree_with_gmtime(void)
{
    time_t at[] = {0,
                   utc(2000, 2, 29, 23, 59, 59),
                   utc(2000, 3, 1, 0, 0, 0),
                   utc(1999, 12, 31, 23, 59, 59),
                   utc(2024, 2, 29, 12, 0, 0),
                   utc(2100, 3, 1, 0, 0, 0),
                   utc(2038, 1, 19, 3, 14, 8),
                   utc(2026, 11, 27, 19, 5, 1)};
    unsigned seed = 12345;
    for (size_t k = 0; k < sizeof at / sizeof at[0] + 200; k++) {
        time_t t;
        if (k < sizeof at / sizeof at[0]) {
            t = at[k];
        } else {
            seed = seed * 1103515245u + 12345u;
            t = (time_t)(seed % 4102444800u); /* 1970 .. 2100 */
        }
        capture_start(LOG_INFO);
        fake_now = (struct timespec){t, 999000000};
        log_set_clock(fake_clock);
        log_info("x");
        struct tm tm;
        char want[64];
        gmtime_r(&t, &tm);
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S.999Z gen_cnode info: x\n", &tm);
        CU_ASSERT(n > 0);
        CU_ASSERT_STRING_EQUAL(capture_text(), want);
        capture_stop();
    }
}

static void test_levels_filter(void)
{
    static const struct {
        enum log_level level;
        const char *name;
    } levels[] = {{LOG_ERROR, "error"}, {LOG_WARNING, "warning"}, {LOG_NOTICE, "notice"},
                  {LOG_INFO, "info"},   {LOG_DEBUG, "debug"}};
    size_t n = sizeof levels / sizeof levels[0];
    CU_ASSERT(LOG_ERROR < LOG_WARNING && LOG_WARNING < LOG_NOTICE && LOG_NOTICE < LOG_INFO &&
              LOG_INFO < LOG_DEBUG);
    for (size_t set = 0; set < n; set++) {
        capture_start(levels[set].level);
        fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 6000000};
        log_set_clock(fake_clock);
        log_error("e");
        log_warning("w");
        log_notice("n");
        log_info("i");
        log_debug("d");
        char want[512] = "";
        for (size_t k = 0; k <= set; k++) {
            char line[64];
            snprintf(line, sizeof line, "2026-01-02T03:04:05.006Z gen_cnode %s: %c\n", levels[k].name,
                     levels[k].name[0]);
            strcat(want, line);
        }
        CU_ASSERT_STRING_EQUAL(capture_text(), want);
        for (size_t k = 0; k < n; k++)
            CU_ASSERT_EQUAL(!!log_enabled(levels[k].level), k <= set);
        capture_stop();
    }
}

/* A module's gcn_log levels (the public enum, unchanged) land at the same
 * levels: info is info, not notice; debug is filtered at info. */
static void test_public_levels_map(void)
{
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 0};
    log_set_clock(fake_clock);
    gcn_log(GCN_LOG_ERROR, "pe");
    gcn_log(GCN_LOG_WARNING, "pw");
    gcn_log(GCN_LOG_INFO, "pi %d", 1);
    gcn_log(GCN_LOG_DEBUG, "pd");
    CU_ASSERT_STRING_EQUAL(capture_text(), "2026-01-02T03:04:05.000Z gen_cnode error: pe\n"
                                           "2026-01-02T03:04:05.000Z gen_cnode warning: pw\n"
                                           "2026-01-02T03:04:05.000Z gen_cnode info: pi 1\n");
    CU_ASSERT_EQUAL(log_level_of_public(GCN_LOG_ERROR), LOG_ERROR);
    CU_ASSERT_EQUAL(log_level_of_public(GCN_LOG_WARNING), LOG_WARNING);
    CU_ASSERT_EQUAL(log_level_of_public(GCN_LOG_INFO), LOG_INFO);
    CU_ASSERT_EQUAL(log_level_of_public(GCN_LOG_DEBUG), LOG_DEBUG);
    CU_ASSERT_EQUAL(log_level_of_public(LOG_NOTICE), LOG_NOTICE);
    capture_stop();
}

static void test_node_name(void)
{
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 0};
    log_set_clock(fake_clock);
    log_info("a");
    log_set_node("db@10.0.0.7");
    log_info("b");
    log_set_node(NULL);
    log_info("c");
    CU_ASSERT_STRING_EQUAL(capture_text(), "2026-01-02T03:04:05.000Z gen_cnode info: a\n"
                                           "2026-01-02T03:04:05.000Z db@10.0.0.7 info: b\n"
                                           "2026-01-02T03:04:05.000Z gen_cnode info: c\n");
    capture_stop();
}

/* At most LOG_BURST lines a second (errors always pass); what was held
 * back is reported in one warning, before the next second's first line. */
static void test_burst_cap_and_report(void)
{
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 100000000};
    log_set_clock(fake_clock);
    log_set_node("kv@127.0.0.1");
    for (int i = 0; i < LOG_BURST + 10; i++)
        log_warning("flood %d", i);
    log_error("an error is never held back");
    const char *text = capture_text();
    CU_ASSERT_EQUAL(count_lines(text), LOG_BURST + 1);
    CU_ASSERT_EQUAL(count_of(text, "flood"), LOG_BURST);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "flood 49\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "flood 50\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "suppressed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "error: an error is never held back\n"));
    fake_now.tv_sec++;
    fake_now.tv_nsec = 2000000;
    log_info("next second");
    text = capture_text();
    const char *report = strstr(text, "2026-01-02T03:04:06.002Z kv@127.0.0.1 warning: 10 log lines "
                                      "suppressed (more than 50 a second)\n"
                                      "2026-01-02T03:04:06.002Z kv@127.0.0.1 info: next second\n");
    CU_ASSERT_PTR_NOT_NULL(report);
    CU_ASSERT_EQUAL(count_of(text, "suppressed"), 1);
    /* A quiet second after that: no report again. */
    fake_now.tv_sec++;
    log_info("later");
    CU_ASSERT_EQUAL(count_of(capture_text(), "suppressed"), 1);
    capture_stop();
}

/* Lines filtered out by level do not count against the cap. */
static void test_filtered_lines_do_not_count(void)
{
    capture_start(LOG_WARNING);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 0};
    log_set_clock(fake_clock);
    for (int i = 0; i < 5 * LOG_BURST; i++)
        log_info("filtered %d", i);
    log_warning("shown");
    fake_now.tv_sec++;
    log_warning("shown too");
    const char *text = capture_text();
    CU_ASSERT_EQUAL(count_lines(text), 2);
    CU_ASSERT_PTR_NULL(strstr(text, "suppressed"));
    capture_stop();
}

/* A line longer than the stack buffer is written whole, on one line. */
static void test_long_line(void)
{
    size_t len = 10000;
    char *big = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'x', len);
    big[len] = '\0';
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 0};
    log_set_clock(fake_clock);
    log_info("%s|end", big);
    const char *text = capture_text();
    const char *head = "2026-01-02T03:04:05.000Z gen_cnode info: ";
    CU_ASSERT_EQUAL(strlen(text), strlen(head) + len + strlen("|end\n"));
    CU_ASSERT_EQUAL(strncmp(text, head, strlen(head)), 0);
    CU_ASSERT_EQUAL(count_lines(text), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "x|end\n"));
    capture_stop();
    free(big);
}

/* log_forked writes the same line straight to the sink's descriptor. */
static void test_forked_line(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    enum log_level level = log_get_level();
    log_set_level(LOG_INFO);
    log_set_sink(f);
    fake_now = (struct timespec){utc(2026, 1, 2, 3, 4, 5), 7000000};
    log_set_clock(fake_clock);
    log_set_node("kv@127.0.0.1");
    log_forked(LOG_ERROR, "compaction: %s", "disk full");
    log_forked(LOG_DEBUG, "not shown");
    char buf[256] = "";
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    CU_ASSERT_STRING_EQUAL(buf, "2026-01-02T03:04:05.007Z kv@127.0.0.1 error: compaction: disk full\n");
    log_set_sink(NULL);
    log_set_clock(NULL);
    log_set_node(NULL);
    log_set_level(level);
    fclose(f);
}

/* A message holding a newline, or any control byte (a node name a peer
 * chose, say), stays one line: the bytes are written as '?'. */
static void test_a_line_stays_one_line(void)
{
    capture_start(LOG_INFO);
    fake_now = (struct timespec){utc(2026, 11, 27, 19, 5, 1), 0};
    log_set_clock(fake_clock);
    log_set_node("kv@127.0.0.1");
    log_warning("cannot connect to %s", "x@h\n2026-11-27T19:05:01.000Z kv@127.0.0.1 error: forged\r\x1b[2J\x7f");
    log_info("tab\tkept");
    CU_ASSERT_STRING_EQUAL(capture_text(),
                           "2026-11-27T19:05:01.000Z kv@127.0.0.1 warning: cannot connect to "
                           "x@h?2026-11-27T19:05:01.000Z kv@127.0.0.1 error: forged??[2J?\n"
                           "2026-11-27T19:05:01.000Z kv@127.0.0.1 info: tab\tkept\n");
    CU_ASSERT_EQUAL(count_lines(capture_text()), 2);
    capture_stop();
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    enum log_level level = log_get_level();
    log_set_level(LOG_INFO);
    log_set_sink(f);
    log_forked(LOG_ERROR, "child: %s", "a\nb");
    char buf[256] = "";
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "error: child: a?b\n"));
    CU_ASSERT_EQUAL(count_lines(buf), 1);
    log_set_sink(NULL);
    log_set_level(level);
    fclose(f);
}

static void test_level_names(void)
{
    enum log_level l = LOG_ERROR;
    CU_ASSERT_EQUAL(log_level_parse("notice", &l), 0);
    CU_ASSERT_EQUAL(l, LOG_NOTICE);
    CU_ASSERT_EQUAL(log_level_parse("debug", &l), 0);
    CU_ASSERT_EQUAL(l, LOG_DEBUG);
    CU_ASSERT_EQUAL(log_level_parse("loud", &l), -1);
    CU_ASSERT_EQUAL(log_level_parse("", &l), -1);
    CU_ASSERT_EQUAL(log_level_parse("INFO", &l), -1);
    CU_ASSERT_EQUAL(l, LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(log_level_name(LOG_WARNING), "warning");
    CU_ASSERT_STRING_EQUAL(log_level_name(LOG_NOTICE), "notice");
}

void unit_suite_log(void)
{
    CU_pSuite suite = CU_add_suite("log", NULL, NULL);
    if (!suite)
        return;
    CU_add_test(suite, "line format", test_line_format);
    CU_add_test(suite, "timestamps agree with gmtime", test_timestamps_agree_with_gmtime);
    CU_add_test(suite, "levels filter", test_levels_filter);
    CU_add_test(suite, "public levels map", test_public_levels_map);
    CU_add_test(suite, "node name", test_node_name);
    CU_add_test(suite, "burst cap and report", test_burst_cap_and_report);
    CU_add_test(suite, "filtered lines do not count", test_filtered_lines_do_not_count);
    CU_add_test(suite, "long line", test_long_line);
    CU_add_test(suite, "forked line", test_forked_line);
    CU_add_test(suite, "a line stays one line", test_a_line_stays_one_line);
    CU_add_test(suite, "level names", test_level_names);
}
