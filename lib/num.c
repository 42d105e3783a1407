/*
 * num.c - range-checked decimal parsing (see num.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "scepd/num.h"

enum scep_err
scep_strtonum(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;

    *out = 0;
    if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
        return SCEP_E_INVALID_ARG;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < min || v > max)
        return SCEP_E_INVALID_ARG;
    *out = v;
    return SCEP_OK;
}
