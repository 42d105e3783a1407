/*
 * ratelimit.h - per-source limit on authentication failures (matrix A8).
 *
 * A source (IP address) that fails authentication (wrong or missing
 * challenge) more than `limit` times within `window` seconds is refused
 * with HTTP 429 for the rest of that window, before any private-key
 * operation is spent on it.  Fixed memory: a table of `slots` sources;
 * when it is full the oldest entry is reused.  Thread-safe.
 */
#ifndef SCEPD_RATELIMIT_H
#define SCEPD_RATELIMIT_H

#include <stddef.h>
#include <time.h>

struct scep_ratelimit;

/* limit 0 disables; NULL on ENOMEM. */
struct scep_ratelimit *scep_ratelimit_new(unsigned limit, unsigned window_s, size_t slots);
void scep_ratelimit_free(struct scep_ratelimit *rl);
/* 1 when the source is currently refused; *retry_after gets seconds left. */
int scep_ratelimit_blocked(struct scep_ratelimit *rl, const void *addr, size_t addrlen, time_t now,
                           unsigned *retry_after);
/* Count one authentication failure of the source. */
void scep_ratelimit_fail(struct scep_ratelimit *rl, const void *addr, size_t addrlen, time_t now);

#endif
