/*
 * test_store.c - the SQLite store: transaction uniqueness, serial
 * uniqueness, durability settings, retention, a bounded WAL.
 */
#include "testutil.h"

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "scepd/store.h"

static void
rows(struct fixture *f, const char *txid, const char *serial, struct scep_request_row *req,
     struct scep_cert_row *cert)
{
    memset(req, 0, sizeof(*req));
    memset(cert, 0, sizeof(*cert));
    req->endpoint_id = f->ep->id;
    req->txid_len = strlen(txid);
    memcpy(req->txid, txid, req->txid_len);
    memset(req->key_hash, 1, 32);
    memset(req->csr_hash, 2, 32);
    req->msgtype = 19;
    req->status = SCEP_REQ_ISSUED;
    snprintf(cert->serial, sizeof(cert->serial), "%s", serial);
    cert->ca_id = f->ep->ca_id;
    cert->endpoint_id = f->ep->id;
    cert->subject = "CN=x";
    cert->sans = "";
    snprintf(cert->sha1, sizeof(cert->sha1), "%s", serial);
    snprintf(cert->sha256, sizeof(cert->sha256), "sha256-%s", serial);
    cert->der = (const unsigned char *)"der";
    cert->der_len = 3;
    cert->txid = req->txid;
    cert->txid_len = req->txid_len;
}

static void
test_store_commit_conflicts(void **state)
{
    struct fixture *f = *state;
    struct scep_store *s = scep_service_store(f->svc);
    struct scep_request_row req, got;
    struct scep_cert_row cert;
    unsigned char *der = NULL;
    size_t derlen = 0;

    rows(f, "tx1", "0a01", &req, &cert);
    assert_int_equal(scep_store_commit_issuance(s, &req, (const unsigned char *)"csr", 3, &cert),
                     SCEP_OK);
    /* same (endpoint, txid): the duplicate loses and nothing is written */
    rows(f, "tx1", "0a02", &req, &cert);
    assert_int_equal(scep_store_commit_issuance(s, &req, (const unsigned char *)"csr", 3, &cert),
                     SCEP_E_CONFLICT);
    /* same serial under another txid */
    rows(f, "tx2", "0a01", &req, &cert);
    assert_int_equal(scep_store_commit_issuance(s, &req, (const unsigned char *)"csr", 3, &cert),
                     SCEP_E_EXISTS);
    assert_int_equal(test_cert_count(f), 1);
    /* the request that did not commit left no row */
    assert_int_equal(
        scep_store_find_request(s, f->ep->id, (const unsigned char *)"tx2", 3, &got, NULL, NULL),
        SCEP_E_NO_ENTRY);
    assert_int_equal(
        scep_store_find_request(s, f->ep->id, (const unsigned char *)"tx1", 3, &got, &der, &derlen),
        SCEP_OK);
    assert_int_equal(got.status, SCEP_REQ_ISSUED);
    assert_string_equal(got.serial, "0a01");
    assert_int_equal(derlen, 3);
    free(der);
}

static void
test_store_durability_pragmas(void **state)
{
    struct fixture *f = *state;
    char path[512];
    sqlite3 *db;
    sqlite3_stmt *st;

    /* WAL is persistent in the file: a new connection sees it. */
    snprintf(path, sizeof(path), "%s/%s", f->dir, SCEP_DB_FILE);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int
count_event(void *arg, const struct scep_event_row *e)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static int
count_challenge(void *arg, const struct scep_challenge_row *c)
{
    (void)c;
    (*(int *)arg)++;
    return 0;
}

/* Settled events and spent challenges go after their retention; pending events stay. */
static void
test_store_prune(void **state)
{
    struct fixture *f = *state;
    struct scep_store *s = scep_service_store(f->svc);
    struct scep_challenge_row ch;
    struct scep_request_row req;
    struct scep_cert_row cert;
    int64_t now = (int64_t)time(NULL), id = 0, n = -1;
    int events = 0, challenges = 0;

    assert_int_equal(scep_store_record_refusal(s, f->ep->id, "default", "tx-local", "static",
                                               "challenge", "{\"event\":\"failure\"}", 0),
                     SCEP_OK);
    assert_int_equal(scep_store_record_refusal(s, f->ep->id, "default", "tx-pending", "static",
                                               "challenge", "{\"event\":\"failure\"}", 1),
                     SCEP_OK);
    memset(&ch, 0, sizeof(ch));
    ch.endpoint_id = f->ep->id;
    memset(ch.hash, 7, 32);
    ch.created_at = now - 100;
    ch.expires_at = now - 10; /* expired */
    assert_int_equal(scep_store_add_challenge(s, &ch, 10, &id), SCEP_OK);
    memset(ch.hash, 8, 32);
    ch.expires_at = now + 3600; /* open */
    assert_int_equal(scep_store_add_challenge(s, &ch, 10, &id), SCEP_OK);
    /* the refusals ride the writer queue: an issuance after them flushes it */
    rows(f, "tx-flush", "0a", &req, &cert);
    assert_int_equal(scep_store_commit_issuance(s, &req, (const unsigned char *)"csr", 3, &cert),
                     SCEP_OK);
    assert_int_equal(scep_store_each_event(s, NULL, 0, count_event, &events), SCEP_OK);
    assert_int_equal(events, 2);

    assert_int_equal(scep_store_prune(s, now + 10, 5, &n), SCEP_OK);
    assert_int_equal(n, 2); /* the local event and the expired challenge */
    events = 0;
    assert_int_equal(scep_store_each_event(s, NULL, 0, count_event, &events), SCEP_OK);
    assert_int_equal(events, 1);
    events = 0;
    assert_int_equal(scep_store_each_event(s, "pending", 0, count_event, &events), SCEP_OK);
    assert_int_equal(events, 1);
    assert_int_equal(scep_store_each_challenge(s, f->ep->id, count_challenge, &challenges),
                     SCEP_OK);
    assert_int_equal(challenges, 1);
}

struct wal_worker {
    struct fixture *f;
    int id, n, failed;
};

static void *
wal_worker_main(void *arg)
{
    struct wal_worker *w = arg;
    struct scep_store *s = scep_service_store(w->f->svc);
    static unsigned char blob[2500]; /* about an issuance's certificate and event */
    int i;

    for (i = 0; i < w->n; i++) {
        struct scep_request_row req;
        struct scep_cert_row cert;
        char txid[32], serial[32];
        snprintf(txid, sizeof(txid), "wal-%d-%d", w->id, i);
        snprintf(serial, sizeof(serial), "%02x%06x", w->id + 1, i);
        rows(w->f, txid, serial, &req, &cert);
        cert.der = blob;
        cert.der_len = sizeof(blob);
        if (scep_store_commit_issuance(s, &req, blob, sizeof(blob), &cert) != SCEP_OK)
            w->failed++;
        /*
         * and the lookup every enrollment makes, whose statement stays
         * prepared on its connection: left holding a read transaction, it
         * would stop the checkpoints and the WAL would grow
         */
        {
            struct scep_request_row got;
            if (scep_store_find_request(s, w->f->ep->id, (const unsigned char *)txid, strlen(txid),
                                        &got, NULL, NULL) != SCEP_OK ||
                strcmp(got.serial, serial) != 0)
                w->failed++;
        }
    }
    return NULL;
}

/*
 * The lookup's statement is kept prepared per pooled connection: every
 * call binds its own values and sees every commit before it, found or not,
 * from several threads (each on its own connection) at once.
 */
struct lookup_worker {
    struct fixture *f;
    int id, failed;
};

static void *
lookup_worker_main(void *arg)
{
    struct lookup_worker *w = arg;
    struct scep_store *s = scep_service_store(w->f->svc);
    int i;

    for (i = 0; i < 300; i++) {
        struct scep_request_row req, got;
        struct scep_cert_row cert;
        char txid[32], serial[32], other[32];
        unsigned char *der = NULL;
        size_t derlen = 0;
        snprintf(txid, sizeof(txid), "lk-%d-%d", w->id, i);
        snprintf(other, sizeof(other), "lk-%d-%d", w->id, i + 1);
        snprintf(serial, sizeof(serial), "%02x%06x", w->id + 0x40, i);
        rows(w->f, txid, serial, &req, &cert);
        /* not yet there, then there with its certificate, then the next one not yet */
        if (scep_store_find_request(s, w->f->ep->id, (const unsigned char *)txid, strlen(txid),
                                    &got, NULL, NULL) != SCEP_E_NO_ENTRY ||
            scep_store_commit_issuance(s, &req, (const unsigned char *)"csr", 3, &cert) !=
                SCEP_OK ||
            scep_store_find_request(s, w->f->ep->id, (const unsigned char *)txid, strlen(txid),
                                    &got, &der, &derlen) != SCEP_OK ||
            strcmp(got.serial, serial) != 0 || derlen != 3 || got.status != SCEP_REQ_ISSUED ||
            scep_store_find_request(s, w->f->ep->id, (const unsigned char *)other, strlen(other),
                                    &got, NULL, NULL) != SCEP_E_NO_ENTRY)
            w->failed++;
        free(der);
    }
    return NULL;
}

static void
test_store_lookup_kept_statement(void **state)
{
    struct fixture *f = *state;
    struct lookup_worker w[4];
    pthread_t th[4];
    int i;

    for (i = 0; i < 4; i++) {
        w[i].f = f;
        w[i].id = i;
        w[i].failed = 0;
        assert_int_equal(pthread_create(&th[i], NULL, lookup_worker_main, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    assert_int_equal(test_cert_count(f), 1200);
}

/*
 * Checkpoints run beside the group commit (store_sqlite.c, ckpt_main) and
 * must still keep the WAL bounded while commits never stop: ~90 MB go
 * through it here, from 4 threads at once.  Without the writer finishing
 * each of the checkpointer's passes, the WAL grows with every commit.
 */
static void
test_store_wal_bounded(void **state)
{
    struct fixture *f = *state;
    struct wal_worker w[4];
    pthread_t th[4];
    char path[512];
    struct stat st;
    int i;

    for (i = 0; i < 4; i++) {
        w[i].f = f;
        w[i].id = i;
        w[i].n = 1500;
        w[i].failed = 0;
        assert_int_equal(pthread_create(&th[i], NULL, wal_worker_main, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failed, 0);
    }
    assert_int_equal(test_cert_count(f), 6000);
    snprintf(path, sizeof(path), "%s/%s-wal", f->dir, SCEP_DB_FILE);
    assert_int_equal(stat(path, &st), 0);
    print_message("WAL after 6000 issuances from 4 threads: %lld KiB\n",
                  (long long)st.st_size / 1024);
    /* 7-8 MiB here (2000 pages: twice the checkpoint threshold); unbounded, it reached 90 MB. */
    assert_true(st.st_size < 16LL * 1024 * 1024);
}

/*
 * Every housekeeping statement reaches its rows by an index on their age:
 * none scans a table or walks all rows of a status (with a million
 * settled events that held the write lock 0.9 s).
 */
static void
test_store_prune_uses_indexes(void **state)
{
    struct fixture *f = *state;
    char path[512];
    sqlite3 *db = NULL;
    const char *sql;
    size_t i;

    snprintf(path, sizeof(path), "%s/scepd.db", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (i = 0; (sql = scep_store_prune_sql(i)) != NULL; i++) {
        char eqp[1024];
        sqlite3_stmt *st = NULL;
        int searched = 0;
        snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
        assert_int_equal(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            assert_non_null(detail);
            /* "SCAN t" is a table scan; an index walk reads "SEARCH ... USING ... INDEX" */
            if (strncmp(detail, "SCAN ", 5) == 0)
                fail_msg("prune statement %zu scans: %s", i, detail);
            /* and the index is walked by age, e.g. "USING INDEX outbox_created (created_at<?)";
             * "USING INDEX outbox_due (status=?)" visited every settled event */
            searched += strstr(detail, "INDEX") != NULL && strstr(detail, "_at<?)") != NULL;
        }
        assert_int_equal(searched, 1);
        sqlite3_finalize(st);
    }
    assert_int_equal(i, 4);
    sqlite3_close(db);
}

/* More old rows than one transaction takes: all go, a chunk at a time; newer ones stay. */
static void
test_store_prune_in_chunks(void **state)
{
    struct fixture *f = *state;
    struct scep_store *s = scep_service_store(f->svc);
    char path[512];
    sqlite3 *db = NULL;
    int64_t now = (int64_t)time(NULL), n = -1;
    sqlite3_stmt *st = NULL;
    int i, left = -1;

    snprintf(path, sizeof(path), "%s/scepd.db", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO outbox(created_at, endpoint_id, kind, "
                                        "payload, status, next_attempt_at) "
                                        "VALUES (?, 1, 'success', '{}', ?, 0)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (i = 0; i < 1300; i++) {
        /* 1200 old settled, 50 old but still pending, 50 recent settled */
        sqlite3_bind_int64(st, 1, i < 1250 ? now - 1000 : now);
        sqlite3_bind_text(st, 2,
                          i < 1200   ? (i % 2 ? "local" : "delivered")
                          : i < 1250 ? "pending"
                                     : "dead",
                          -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);

    assert_int_equal(scep_store_prune(s, now, 500, &n), SCEP_OK);
    assert_int_equal(n, 1200);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    left = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(left, 100);
    sqlite3_close(db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_commit_conflicts, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_durability_pragmas, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_prune, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_prune_uses_indexes, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_prune_in_chunks, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_wal_bounded, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_store_lookup_kept_statement, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
