/*
 * log.c - the line logger (see log.h).  Trusts nothing it is given: callers
 * escape client-controlled values with scep_log_escape().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scepd/log.h"

static enum scep_log_level min_level = SCEP_LOG_INFO;
static int log_fd = 2;

void
scep_log_set_level(enum scep_log_level lvl)
{
    min_level = lvl;
}

void
scep_log_set_fd(int fd)
{
    log_fd = fd;
}

static const char *
level_name(enum scep_log_level lvl)
{
    switch (lvl) {
    case SCEP_LOG_DEBUG:
        return "debug";
    case SCEP_LOG_INFO:
        return "info";
    case SCEP_LOG_WARN:
        return "warn";
    case SCEP_LOG_ERROR:
        return "error";
    }
    return "?";
}

void
scep_log(enum scep_log_level lvl, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n, m;

    if (lvl < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_name(lvl), module);
    if (n < 0)
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write: lines from different threads never interleave. */
    if (write(log_fd, line, (size_t)n) < 0)
        return;
}

void
scep_log_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = src;
    size_t o = 0, i;

    if (dstlen == 0)
        return;
    for (i = 0; i < srclen; i++) {
        unsigned char c = s[i];
        int plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\';
        size_t need = plain ? 1 : 4;
        if (o + need + 4 > dstlen) {
            if (o + 4 <= dstlen) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (plain) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o] = '\0';
}
