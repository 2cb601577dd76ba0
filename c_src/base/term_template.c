/*
 * term_template.c: the parser of patterns and templates (term_template.h).
 * One recursive descent both checks a whole template (tpl_root, under the
 * rules of its mode) and reads one node of an accepted one (tpl_next, which
 * need not check again). A compound's node is read by walking its elements
 * to find its end and count them, so walking a template costs its length
 * times its depth: templates are short.
 *
 *   term  := '{' [term {',' term}] '}' | '[' [term {',' term}] ']'
 *          | '#{' [term '=>' term {',' term '=>' term}] '}'
 *          | [a-z][A-Za-z0-9_@]* | '\'' text '\'' | '"' text '"'
 *          | ['-'] digits | '_' | '~' letter
 * with blanks (space, tab, newline) around any term and separator. In
 * quoted text the only escapes are \\ and the quote itself.
 */
#include "term_template.h"

#include <string.h>

#include "log.h"

#define ATOM_MAX_CHARS 255
#define ATOM_MAX_BYTES (4 * ATOM_MAX_CHARS)

struct parser {
    const char *holes; /* the hole letters taken */
    int any_ok;        /* `_` taken */
    int literal_keys;  /* map keys may hold no hole and no `_` */
    int in_key;        /* inside such a key */
    const char *at;    /* the first fault: where, and what */
    const char *why;
};

static int fail(struct parser *ps, const char *at, const char *why)
{
    if (!ps->why) {
        ps->at = at;
        ps->why = why;
    }
    return -1;
}

static const char *blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_name(char c)
{
    return is_lower(c) || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '@';
}

int atom_text_ok(const char *utf8, size_t len)
{
    const unsigned char *p = (const unsigned char *)utf8;
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++) {
        unsigned lead = p[i];
        size_t n;
        uint32_t cp, min;
        if (lead < 0x80) {
            i++;
            continue;
        } else if (lead >= 0xC2 && lead < 0xE0) {
            n = 2, cp = lead & 0x1F, min = 0x80;
        } else if (lead >= 0xE0 && lead < 0xF0) {
            n = 3, cp = lead & 0x0F, min = 0x800;
        } else if (lead >= 0xF0 && lead < 0xF5) {
            n = 4, cp = lead & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n > len - i)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return chars <= ATOM_MAX_CHARS;
}

/* Text from just after the opening quote q at *s to the closing one. */
static int quoted(struct parser *ps, const char **s, tpl_node *n)
{
    char q = **s;
    const char *p = *s + 1;
    n->text = p;
    while (*p != q) {
        if (*p == '\0')
            return fail(ps, *s, "unterminated quotes");
        if (*p == '\\' && p[1] != q && p[1] != '\\')
            return fail(ps, p, "unknown escape (only \\\\ and the quote)");
        p += *p == '\\' ? 2 : 1;
    }
    n->len = (size_t)(p - n->text);
    *s = p + 1;
    return 0;
}

static int quoted_atom(struct parser *ps, const char **s, tpl_node *n)
{
    const char *start = *s;
    if (quoted(ps, s, n) < 0)
        return -1;
    char text[2 * ATOM_MAX_BYTES]; /* each byte of a valid atom takes at most two */
    if (n->len > sizeof text || !atom_text_ok(text, tpl_text(n, text)))
        return fail(ps, start, "not an atom (UTF-8, at most 255 characters)");
    return 0;
}

static int integer(struct parser *ps, const char **s, tpl_node *n)
{
    const char *p = *s;
    n->neg = *p == '-';
    p += n->neg;
    if (!is_digit(*p))
        return fail(ps, *s, "a digit expected");
    uint64_t v = 0;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return fail(ps, *s, "an integer beyond 64 bits");
        v = v * 10 + d;
    }
    n->neg &= v != 0;
    n->mag = v;
    *s = p;
    return 0;
}

static int parse_term(struct parser *ps, const char **src, tpl_node *n, unsigned depth);

/* The elements of a compound, from just inside its opening bracket to the
 * close one (key => value pairs for a map): checked and counted. */
static int elements(struct parser *ps, const char **src, char close, int map, tpl_node *n,
                    unsigned depth)
{
    const char *s = blanks(*src);
    int in_key = ps->in_key;
    n->body = s;
    n->count = 0;
    if (*s != close) {
        for (;;) {
            tpl_node child;
            ps->in_key = in_key || (map && ps->literal_keys);
            int rc = parse_term(ps, &s, &child, depth + 1);
            ps->in_key = in_key;
            if (rc < 0)
                return -1;
            if (map) {
                if (s[0] != '=' || s[1] != '>')
                    return fail(ps, s, "=> expected");
                s += 2;
                if (parse_term(ps, &s, &child, depth + 1) < 0)
                    return -1;
            }
            n->count++;
            if (*s == close)
                break;
            if (*s != ',')
                return fail(ps, s, close == '}' ? ", or } expected" : ", or ] expected");
            s++;
        }
    }
    *src = s + 1;
    return 0;
}

/* One term at *src (blanks first), described in *n; *src moves past it and
 * the blanks after it. */
static int parse_term(struct parser *ps, const char **src, tpl_node *n, unsigned depth)
{
    const char *s = blanks(*src), *start = s;
    memset(n, 0, sizeof *n);
    if (depth > TPL_MAX_DEPTH)
        return fail(ps, s, "nested too deeply");
    int rc = 0;
    if (*s == '{' || *s == '[') {
        n->kind = *s == '{' ? TPL_TUPLE : TPL_LIST;
        s++;
        rc = elements(ps, &s, n->kind == TPL_TUPLE ? '}' : ']', 0, n, depth);
    } else if (s[0] == '#' && s[1] == '{') {
        n->kind = TPL_MAP;
        s += 2;
        rc = elements(ps, &s, '}', 1, n, depth);
    } else if (*s == '\'') {
        n->kind = TPL_ATOM;
        rc = quoted_atom(ps, &s, n);
    } else if (*s == '"') {
        n->kind = TPL_STRING;
        rc = quoted(ps, &s, n);
    } else if (*s == '-' || is_digit(*s)) {
        n->kind = TPL_INT;
        rc = integer(ps, &s, n);
    } else if (is_lower(*s)) {
        n->kind = TPL_ATOM;
        n->text = s;
        while (is_name(*s))
            s++;
        n->len = (size_t)(s - n->text);
        if (n->len > ATOM_MAX_CHARS)
            rc = fail(ps, start, "an atom of more than 255 characters");
    } else if (*s == '~' || (*s == '_' && !is_name(s[1]))) {
        n->kind = *s == '~' ? TPL_HOLE : TPL_ANY;
        n->hole = *s == '~' ? s[1] : 0;
        if (ps->in_key)
            rc = fail(ps, s, "a map key in a pattern must be a literal");
        else if (n->kind == TPL_ANY && !ps->any_ok)
            rc = fail(ps, s, "_ in a template");
        else if (n->kind == TPL_HOLE && (!n->hole || !strchr(ps->holes, n->hole)))
            rc = fail(ps, s, "an unknown ~ hole");
        s += n->kind == TPL_HOLE ? 2 : 1;
    } else {
        rc = fail(ps, s, *s ? "a term expected" : "a term expected, not the end");
    }
    if (rc < 0)
        return -1;
    *src = blanks(s);
    return 0;
}

int tpl_root(const char *src, enum tpl_mode mode, const char *who, tpl_node *root)
{
    const char *what = mode == TPL_PATTERN ? "pattern" : "template";
    if (!src) {
        log_error("%s: no %s (NULL)", who, what);
        return -1;
    }
    struct parser ps = {
        .holes = mode == TPL_PATTERN ? "tiufabplm" : "tiufasb",
        .any_ok = mode == TPL_PATTERN,
        .literal_keys = mode == TPL_PATTERN,
    };
    const char *s = src;
    if (parse_term(&ps, &s, root, 0) == 0 && *s == '\0')
        return 0;
    fail(&ps, s, "the end expected");
    log_error("%s: malformed %s at offset %td (%s): %.200s", who, what, ps.at - src, ps.why,
              src);
    return -1;
}

void tpl_first(const tpl_node *compound, const char **cursor)
{
    *cursor = compound->body;
}

void tpl_next(const char **cursor, tpl_node *out)
{
    struct parser ps = {.holes = "tiufasbplm", .any_ok = 1};
    parse_term(&ps, cursor, out, 0); /* tpl_root accepted it */
    if (**cursor == ',')
        ++*cursor;
    else if ((*cursor)[0] == '=' && (*cursor)[1] == '>')
        *cursor += 2;
}

size_t tpl_text(const tpl_node *n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n->len; i++) {
        i += n->text[i] == '\\';
        out[o++] = n->text[i];
    }
    return o;
}

int tpl_text_is(const tpl_node *n, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n->len; i++, o++) {
        i += n->text[i] == '\\';
        if (o == len || s[o] != n->text[i])
            return 0;
    }
    return o == len;
}
