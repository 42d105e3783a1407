/*
 * err.c - text and categories for the error table in err.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include "scepd/err.h"

struct errdef {
    const char *name;
    enum scep_errcat cat;
    const char *msg;
};

static const struct errdef errdefs[] = {
#define SCEP_X_DEF(code, name, cat, msg) [code] = {name, cat, msg},
    SCEP_ERR_TABLE(SCEP_X_DEF)
#undef SCEP_X_DEF
};

static const struct errdef *
lookup(enum scep_err e)
{
    if ((unsigned)e >= SCEP_E__COUNT)
        return &errdefs[SCEP_E_INTERNAL];
    return &errdefs[e];
}

const char *
scep_strerror(enum scep_err e)
{
    return lookup(e)->msg;
}

const char *
scep_errname(enum scep_err e)
{
    return lookup(e)->name;
}

enum scep_errcat
scep_errcat(enum scep_err e)
{
    return lookup(e)->cat;
}

int
scep_errcat_http_status(enum scep_errcat c)
{
    switch (c) {
    case SCEP_CAT_OK:
    case SCEP_CAT_BADALG:
    case SCEP_CAT_BADMSGCHECK:
    case SCEP_CAT_BADREQUEST:
    case SCEP_CAT_BADTIME:
    case SCEP_CAT_BADCERTID:
        return 200;
    case SCEP_CAT_HTTP400:
        return 400;
    case SCEP_CAT_HTTP404:
        return 404;
    case SCEP_CAT_HTTP405:
        return 405;
    case SCEP_CAT_HTTP413:
        return 413;
    case SCEP_CAT_HTTP429:
        return 429;
    case SCEP_CAT_HTTP503:
        return 503;
    case SCEP_CAT_HTTP500:
    case SCEP_CAT_LOCAL:
        return 500;
    }
    return 500;
}

int
scep_errcat_failinfo(enum scep_errcat c)
{
    switch (c) {
    case SCEP_CAT_BADALG:
        return 0;
    case SCEP_CAT_BADMSGCHECK:
        return 1;
    case SCEP_CAT_BADREQUEST:
        return 2;
    case SCEP_CAT_BADTIME:
        return 3;
    case SCEP_CAT_BADCERTID:
        return 4;
    default:
        return -1;
    }
}

void
scep_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}
