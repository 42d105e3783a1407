/*
 * gate.c - a counting gate with FIFO hand-off (see gate.h).
 * Trusts: its callers to pair enter with leave on the same thread.
 *
 * Each waiter sleeps on its own condition variable: a freed slot is given
 * to the head of the queue directly (no broadcast, no thundering herd, and
 * no newcomer can take it in between, which is what keeps the order).
 */
#include <pthread.h>
#include <stdlib.h>

#include "scepd/gate.h"

struct waiter {
    pthread_cond_t cv;
    int granted;
    struct waiter *next;
};

struct scep_gate {
    pthread_mutex_t mu;
    unsigned slots, busy, waiting;
    struct waiter *head, *tail;
};

/* The gate whose slot this thread holds, or NULL. */
static _Thread_local struct scep_gate *held;

struct scep_gate *
scep_gate_new(unsigned slots)
{
    struct scep_gate *g;

    if (slots == 0 || (g = calloc(1, sizeof(*g))) == NULL)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->slots = slots;
    return g;
}

void
scep_gate_free(struct scep_gate *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void
scep_gate_enter(struct scep_gate *g)
{
    struct waiter w;

    if (g == NULL || held == g)
        return;
    pthread_mutex_lock(&g->mu);
    if (g->busy < g->slots && g->head == NULL) {
        g->busy++;
    } else {
        pthread_cond_init(&w.cv, NULL);
        w.granted = 0;
        w.next = NULL;
        if (g->tail != NULL)
            g->tail->next = &w;
        else
            g->head = &w;
        g->tail = &w;
        g->waiting++;
        while (!w.granted)
            pthread_cond_wait(&w.cv, &g->mu);
        /* the leaver counted the slot as ours (busy unchanged) and unlinked us */
        pthread_cond_destroy(&w.cv);
    }
    pthread_mutex_unlock(&g->mu);
    held = g;
}

void
scep_gate_leave(struct scep_gate *g)
{
    struct waiter *w;

    if (g == NULL || held != g)
        return;
    held = NULL;
    pthread_mutex_lock(&g->mu);
    if ((w = g->head) != NULL) {
        /* hand the slot over: busy stays, the waiter owns it now */
        if ((g->head = w->next) == NULL)
            g->tail = NULL;
        g->waiting--;
        w->granted = 1;
        pthread_cond_signal(&w->cv);
    } else {
        g->busy--;
    }
    pthread_mutex_unlock(&g->mu);
}

int
scep_gate_pause(struct scep_gate *g)
{
    if (g == NULL || held != g)
        return 0;
    scep_gate_leave(g);
    return 1;
}

void
scep_gate_resume(struct scep_gate *g, int paused)
{
    if (paused)
        scep_gate_enter(g);
}

void
scep_gate_counts(struct scep_gate *g, unsigned *busy, unsigned *waiting)
{
    pthread_mutex_lock(&g->mu);
    *busy = g->busy;
    *waiting = g->waiting;
    pthread_mutex_unlock(&g->mu);
}
