/*
 * ratelimit.c - authentication-failure limiter (see ratelimit.h).
 * Trusts: nothing; addresses are opaque bytes (at most 16).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scepd/ratelimit.h"

struct slot {
    unsigned char addr[16];
    size_t addrlen;
    time_t window_start;
    unsigned count;
    int used;
};

struct scep_ratelimit {
    pthread_mutex_t mu;
    unsigned limit, window;
    size_t nslots;
    struct slot *slots;
};

struct scep_ratelimit *
scep_ratelimit_new(unsigned limit, unsigned window_s, size_t slots)
{
    struct scep_ratelimit *rl = calloc(1, sizeof(*rl));

    if (rl == NULL)
        return NULL;
    if (slots == 0)
        slots = 1;
    if ((rl->slots = calloc(slots, sizeof(*rl->slots))) == NULL) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    rl->limit = limit;
    rl->window = window_s ? window_s : 1;
    rl->nslots = slots;
    return rl;
}

void
scep_ratelimit_free(struct scep_ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl->slots);
    free(rl);
}

/* The slot of addr, or NULL.  Caller holds the lock. */
static struct slot *
find(struct scep_ratelimit *rl, const void *addr, size_t addrlen, time_t now)
{
    size_t i;

    for (i = 0; i < rl->nslots; i++) {
        struct slot *s = &rl->slots[i];
        if (s->used && s->addrlen == addrlen && memcmp(s->addr, addr, addrlen) == 0) {
            if (now - s->window_start >= (time_t)rl->window) {
                s->window_start = now; /* a new window */
                s->count = 0;
            }
            return s;
        }
    }
    return NULL;
}

int
scep_ratelimit_blocked(struct scep_ratelimit *rl, const void *addr, size_t addrlen, time_t now,
                       unsigned *retry_after)
{
    struct slot *s;
    int blocked = 0;

    *retry_after = 0;
    if (rl == NULL || rl->limit == 0 || addrlen > 16)
        return 0;
    pthread_mutex_lock(&rl->mu);
    s = find(rl, addr, addrlen, now);
    if (s != NULL && s->count >= rl->limit) {
        blocked = 1;
        *retry_after = (unsigned)(s->window_start + (time_t)rl->window - now);
        if (*retry_after == 0)
            *retry_after = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return blocked;
}

void
scep_ratelimit_fail(struct scep_ratelimit *rl, const void *addr, size_t addrlen, time_t now)
{
    struct slot *s;
    size_t i, victim = 0;

    if (rl == NULL || rl->limit == 0 || addrlen > 16)
        return;
    pthread_mutex_lock(&rl->mu);
    s = find(rl, addr, addrlen, now);
    if (s == NULL) {
        /* a free slot, else the one whose window started longest ago */
        for (i = 0; i < rl->nslots; i++) {
            if (!rl->slots[i].used) {
                victim = i;
                break;
            }
            if (rl->slots[i].window_start < rl->slots[victim].window_start)
                victim = i;
        }
        s = &rl->slots[victim];
        memset(s, 0, sizeof(*s));
        memcpy(s->addr, addr, addrlen);
        s->addrlen = addrlen;
        s->window_start = now;
        s->used = 1;
    }
    if (s->count < rl->limit)
        s->count++;
    pthread_mutex_unlock(&rl->mu);
}
