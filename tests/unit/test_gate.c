/*
 * test_gate.c - the CPU gate (gate.h): never more holders than slots, a
 * freed slot goes to the longest waiter, pause/resume leave and retake a
 * slot and do nothing on a thread that holds none.  Order is made
 * deterministic by starting each waiter only once the previous one is
 * seen queued (scep_gate_counts), not by sleeping.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "scepd/gate.h"

static unsigned
busy(struct scep_gate *g)
{
    unsigned b, w;

    scep_gate_counts(g, &b, &w);
    return b;
}

static unsigned
waiting(struct scep_gate *g)
{
    unsigned b, w;

    scep_gate_counts(g, &b, &w);
    return w;
}

static void
test_gate_new_zero_slots(void **state)
{
    (void)state;
    assert_null(scep_gate_new(0));
}

static void
test_gate_null_is_noop(void **state)
{
    (void)state;
    scep_gate_enter(NULL);
    scep_gate_leave(NULL);
    assert_int_equal(scep_gate_pause(NULL), 0);
    scep_gate_resume(NULL, 0);
    scep_gate_free(NULL);
}

static void
test_gate_enter_leave_counts(void **state)
{
    struct scep_gate *g = scep_gate_new(2);

    (void)state;
    assert_non_null(g);
    assert_int_equal(busy(g), 0);
    scep_gate_enter(g);
    assert_int_equal(busy(g), 1);
    scep_gate_enter(g); /* a thread holds at most one slot */
    assert_int_equal(busy(g), 1);
    scep_gate_leave(g);
    assert_int_equal(busy(g), 0);
    scep_gate_leave(g); /* holds none: nothing to give back */
    assert_int_equal(busy(g), 0);
    scep_gate_free(g);
}

static void
test_gate_pause_without_slot(void **state)
{
    struct scep_gate *g = scep_gate_new(1);
    int paused;

    (void)state;
    assert_non_null(g);
    paused = scep_gate_pause(g);
    assert_int_equal(paused, 0);
    scep_gate_resume(g, paused);
    assert_int_equal(busy(g), 0); /* resume did not take a slot */
    scep_gate_enter(g);
    paused = scep_gate_pause(g);
    assert_int_equal(paused, 1);
    assert_int_equal(busy(g), 0);
    scep_gate_resume(g, paused);
    assert_int_equal(busy(g), 1);
    scep_gate_leave(g);
    assert_int_equal(busy(g), 0);
    scep_gate_free(g);
}

struct limit_arg {
    struct scep_gate *g;
    atomic_int inside, most, done;
};

static void *
limit_thread(void *p)
{
    struct limit_arg *a = p;
    struct timespec ts = {0, 200000};
    int i;

    for (i = 0; i < 50; i++) {
        int now, m;
        scep_gate_enter(a->g);
        now = atomic_fetch_add(&a->inside, 1) + 1;
        m = atomic_load(&a->most);
        while (now > m && !atomic_compare_exchange_weak(&a->most, &m, now))
            ;
        nanosleep(&ts, NULL);
        atomic_fetch_sub(&a->inside, 1);
        scep_gate_leave(a->g);
        atomic_fetch_add(&a->done, 1);
    }
    return NULL;
}

static void
test_gate_never_more_than_slots(void **state)
{
    struct limit_arg a;
    pthread_t t[8];
    int i;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.g = scep_gate_new(2);
    assert_non_null(a.g);
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, limit_thread, &a), 0);
    for (i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&a.done), 8 * 50);
    assert_true(atomic_load(&a.most) >= 1);
    assert_true(atomic_load(&a.most) <= 2);
    assert_int_equal(busy(a.g), 0);
    assert_int_equal(waiting(a.g), 0);
    scep_gate_free(a.g);
}

struct fifo_arg {
    struct scep_gate *g;
    pthread_mutex_t mu;
    int order[8], n;
};

struct fifo_thread {
    struct fifo_arg *a;
    int id;
};

static void *
fifo_thread(void *p)
{
    struct fifo_thread *ft = p;

    scep_gate_enter(ft->a->g);
    pthread_mutex_lock(&ft->a->mu);
    ft->a->order[ft->a->n++] = ft->id;
    pthread_mutex_unlock(&ft->a->mu);
    scep_gate_leave(ft->a->g);
    return NULL;
}

static void
wait_waiting(struct scep_gate *g, unsigned n)
{
    while (waiting(g) < n)
        sched_yield();
}

static void
test_gate_fifo_handoff(void **state)
{
    struct fifo_arg a;
    struct fifo_thread ft[6];
    pthread_t t[6];
    int i;

    (void)state;
    memset(&a, 0, sizeof(a));
    pthread_mutex_init(&a.mu, NULL);
    a.g = scep_gate_new(1);
    assert_non_null(a.g);
    scep_gate_enter(a.g); /* the one slot: everyone else queues */
    for (i = 0; i < 6; i++) {
        ft[i].a = &a;
        ft[i].id = i + 1;
        assert_int_equal(pthread_create(&t[i], NULL, fifo_thread, &ft[i]), 0);
        wait_waiting(a.g, (unsigned)i + 1);
    }
    assert_int_equal(busy(a.g), 1);
    scep_gate_leave(a.g);
    for (i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a.n, 6);
    for (i = 0; i < 6; i++)
        assert_int_equal(a.order[i], i + 1); /* in the order they queued */
    assert_int_equal(busy(a.g), 0);
    scep_gate_free(a.g);
    pthread_mutex_destroy(&a.mu);
}

struct pause_arg {
    struct scep_gate *g;
    atomic_int stage;
};

static void *
pause_other(void *p)
{
    struct pause_arg *a = p;

    /* gets in only because the holder paused */
    scep_gate_enter(a->g);
    atomic_store(&a->stage, 1);
    scep_gate_leave(a->g);
    return NULL;
}

static void
test_gate_pause_lets_another_in(void **state)
{
    struct pause_arg a;
    pthread_t t;
    int paused;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.g = scep_gate_new(1);
    assert_non_null(a.g);
    scep_gate_enter(a.g);
    assert_int_equal(pthread_create(&t, NULL, pause_other, &a), 0);
    wait_waiting(a.g, 1);
    assert_int_equal(atomic_load(&a.stage), 0);
    paused = scep_gate_pause(a.g);
    assert_int_equal(paused, 1);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&a.stage), 1);
    scep_gate_resume(a.g, paused);
    assert_int_equal(busy(a.g), 1);
    scep_gate_leave(a.g);
    scep_gate_free(a.g);
}

/*
 * The service under a gate: an issuance leaves its caller's slot for the
 * durable commit and does not take it again (its reply is ready; queueing
 * behind newer requests would only hold it back); a refusal, which waits
 * for nothing, keeps it.
 */
static void
test_gate_service_leaves_slot_for_commit(void **state)
{
    struct fixture *f = *state;
    struct scep_gate *g = scep_gate_new(1);
    struct test_req t;
    struct scep_result r;

    assert_non_null(g);
    scep_service_set_gate(f->svc, g);

    scep_gate_enter(g);
    test_req_make(&t, f, test_key(0), test_key(0), "CN=gate-1", TEST_CHALLENGE);
    test_run(f, t.der, t.der_len, &r);
    assert_int_equal(r.err, SCEP_OK);
    assert_string_equal(r.pki_status, "SUCCESS");
    assert_int_equal(test_cert_count(f), 1);
    assert_int_equal(busy(g), 0); /* left for the commit, not retaken */
    scep_gate_leave(g);           /* holds none: no-op */
    assert_int_equal(busy(g), 0);
    scep_result_clear(&r);
    test_req_clear(&t);

    scep_gate_enter(g);
    test_req_make(&t, f, test_key(1), test_key(1), "CN=gate-2", "not-the-challenge");
    test_run(f, t.der, t.der_len, &r);
    assert_int_equal(r.err, SCEP_E_CHALLENGE);
    assert_int_equal(busy(g), 1); /* nothing waited for: still held */
    scep_gate_leave(g);
    assert_int_equal(busy(g), 0);
    scep_result_clear(&r);
    test_req_clear(&t);

    scep_service_set_gate(f->svc, NULL);
    scep_gate_free(g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_new_zero_slots),
        cmocka_unit_test(test_gate_null_is_noop),
        cmocka_unit_test(test_gate_enter_leave_counts),
        cmocka_unit_test(test_gate_pause_without_slot),
        cmocka_unit_test(test_gate_never_more_than_slots),
        cmocka_unit_test(test_gate_fifo_handoff),
        cmocka_unit_test(test_gate_pause_lets_another_in),
        cmocka_unit_test_setup_teardown(test_gate_service_leaves_slot_for_commit, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
