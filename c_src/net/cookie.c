/* cookie.c: reading (or making) ~/.erlang.cookie; see cookie.h. */
#include "cookie.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static int make_cookie(const char *path, char *err, size_t errlen)
{
    unsigned char r[20];
    char c[20];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        snprintf(err, errlen, "no randomness for a new cookie");
        return -1;
    }
    for (size_t i = 0; i < sizeof c; i++)
        c[i] = (char)('A' + r[i] % 26);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0)
        return errno == EEXIST ? 0 : (snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno)), -1);
    ssize_t w = write(fd, c, sizeof c);
    close(fd);
    if (w != (ssize_t)sizeof c) {
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

int cookie_default(char *out, size_t outlen, char *err, size_t errlen)
{
    const char *home = getenv("HOME");
    char path[4096];
    if (!home || !*home) {
        snprintf(err, errlen, "HOME is not set: give --cookie");
        return -1;
    }
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    if (access(path, F_OK) != 0 && make_cookie(path, err, errlen) < 0)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, outlen - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n \t")] = '\0';
    if (!out[0]) {
        snprintf(err, errlen, "%s is empty", path);
        return -1;
    }
    return 0;
}
