/*
 * num.h - the one way numbers are read from text (OpenBSD strtonum style):
 * decimal only, whole string, range-checked.
 */
#ifndef SCEPD_NUM_H
#define SCEPD_NUM_H

#include "scepd/err.h"

enum scep_err scep_strtonum(const char *s, long long min, long long max, long long *out) SCEP_WUR;

#endif
