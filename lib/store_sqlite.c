/*
 * store_sqlite.c - the SQLite back end of store.h.
 *
 * WAL mode, one writer at a time, synchronous=FULL so a commit that
 * returned is on disk before any reply leaves (DESIGN §3 step 7).  Each
 * thread borrows a connection from a small pool; writers use BEGIN
 * IMMEDIATE so a busy database shows up at BEGIN, not half-way through.
 * Trusts: its callers for the values (the SCEP layer validated them);
 * every value is bound as a parameter, never formatted into SQL.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include <openssl/x509.h>

#include "scepd/issue.h"
#include "scepd/log.h"
#include "scepd/num.h"
#include "scepd/store.h"

#define POOL_MAX 64
#define BUSY_TIMEOUT_MS 10000
/* A new database is made at version 1 and migrated like an old one. */
#define SCHEMA_VERSION_LATEST 7

struct scep_commit;

struct scep_store {
    char *path;
    pthread_mutex_t mu;
    sqlite3 *free_conns[POOL_MAX];
    int nfree;
    /* the group-commit writer (started on the first issuance) */
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    struct scep_commit *queue, *queue_tail;
    pthread_t writer;
    int writer_running, stopping;
    sqlite3 *wdb;
    /* checkpoints off the commit path (see ckpt_main) */
    pthread_t ckpt;
    int ckpt_running;
    pthread_cond_t ccond;
    int ckpt_wanted;    /* the WAL passed CKPT_PAGES: work for the checkpointer */
    int ckpt_caught_up; /* its pass ended: the writer may finish the remainder */
    int wal_pages;      /* frames in the WAL after the writer's last commit */
    sqlite3 *cdb;
    sqlite3_stmt *ins_req, *ins_cert;
    sqlite3_stmt *wst[8]; /* the writer's other statements, prepared once */
};

static const char schema[] =
    "CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
    "CREATE TABLE ca("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, cert_der BLOB NOT NULL,"
    " key_ref TEXT NOT NULL, next_ca_id INTEGER REFERENCES ca(id), created_at INTEGER NOT NULL);"
    "CREATE TABLE endpoint("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ca_id INTEGER NOT NULL REFERENCES ca(id),"
    " ra_cert_der BLOB NOT NULL, ra_key_ref TEXT NOT NULL,"
    " challenge_mode TEXT NOT NULL DEFAULT 'static', challenge_hash BLOB,"
    " getcacert_format TEXT NOT NULL DEFAULT 'chain' CHECK (getcacert_format IN "
    "('chain','single')),"
    " allow_des INTEGER NOT NULL DEFAULT 1, advertise_post INTEGER NOT NULL DEFAULT 1,"
    " validity_days INTEGER NOT NULL DEFAULT 365, enabled INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE request("
    " id INTEGER PRIMARY KEY, endpoint_id INTEGER NOT NULL REFERENCES endpoint(id),"
    " txid BLOB NOT NULL, key_hash BLOB NOT NULL, csr_hash BLOB NOT NULL, csr_der BLOB NOT NULL,"
    " msgtype INTEGER NOT NULL, status TEXT NOT NULL"
    "  CHECK (status IN ('issued','pending','rejected','failed')),"
    " fail_info INTEGER, serial TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE (endpoint_id, txid));"
    "CREATE TABLE certificate("
    " serial TEXT PRIMARY KEY, ca_id INTEGER NOT NULL REFERENCES ca(id),"
    " endpoint_id INTEGER NOT NULL REFERENCES endpoint(id), request_id INTEGER REFERENCES "
    "request(id),"
    " subject TEXT NOT NULL, sans TEXT NOT NULL, sha1 TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,"
    " not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, der BLOB NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid','revoked')),"
    " revoked_at INTEGER, revocation_reason INTEGER, txid BLOB, created_at INTEGER NOT NULL);"
    "CREATE INDEX certificate_created ON certificate(created_at);";

/* migrations[i] takes the schema from version i + 1 to i + 2 */
static const char *const migrations[] = {
    "ALTER TABLE endpoint ADD COLUMN approval TEXT NOT NULL DEFAULT 'auto'"
    "  CHECK (approval IN ('auto','manual'));"
    "ALTER TABLE endpoint ADD COLUMN renewal_window_days INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE endpoint ADD COLUMN renewal_grace_days INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE endpoint ADD COLUMN revoke_on_renewal INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE endpoint ADD COLUMN getcert_format TEXT NOT NULL DEFAULT 'single'"
    "  CHECK (getcert_format IN ('single','chain'));"
    "ALTER TABLE request ADD COLUMN reject_reason TEXT;"
    "ALTER TABLE ca ADD COLUMN crl_number INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE ca ADD COLUMN crl_der BLOB;"
    "ALTER TABLE ca ADD COLUMN crl_next_update INTEGER;"
    "CREATE INDEX request_status ON request(status);"
    "CREATE INDEX certificate_ca_status ON certificate(ca_id, status);",
    /* 2 -> 3: CA rollover, the endpoint's next RA */
    "ALTER TABLE endpoint ADD COLUMN next_ra_cert_der BLOB;"
    "ALTER TABLE endpoint ADD COLUMN next_ra_key_ref TEXT;",
    /* 3 -> 4: issuance profiles selected by a Microsoft template name */
    "CREATE TABLE profile(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, template TEXT UNIQUE,"
    " validity_days INTEGER NOT NULL, eku TEXT NOT NULL, created_at INTEGER NOT NULL);",
    /* 4 -> 5: endpoints with organization, profile and challenge modes; full profiles;
       accounts, one-time challenges, token nonces, the outbox and the audit trail */
    "ALTER TABLE endpoint ADD COLUMN organization TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE endpoint ADD COLUMN department TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE endpoint ADD COLUMN profile_id INTEGER REFERENCES profile(id);"
    "ALTER TABLE endpoint ADD COLUMN mode_config TEXT NOT NULL DEFAULT '{}';"
    "ALTER TABLE endpoint ADD COLUMN notify_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE endpoint ADD COLUMN max_outstanding INTEGER NOT NULL DEFAULT 10000;"
    "ALTER TABLE profile ADD COLUMN key_types TEXT NOT NULL DEFAULT 'rsa:2048,ec:p256,ec:p384';"
    "ALTER TABLE profile ADD COLUMN subject_allow TEXT NOT NULL"
    "  DEFAULT 'CN,C,ST,L,O,OU,emailAddress,serialNumber,DC,UID';"
    "ALTER TABLE profile ADD COLUMN subject_forbid TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profile ADD COLUMN san_types TEXT NOT NULL DEFAULT 'dns,email,ip,uri';"
    "ALTER TABLE profile ADD COLUMN san_patterns TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profile ADD COLUMN key_usage TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profile ADD COLUMN max_validity_days INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE profile ADD COLUMN cdp_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profile ADD COLUMN aia_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE profile ADD COLUMN duplicate_subject TEXT NOT NULL DEFAULT 'allow'"
    "  CHECK (duplicate_subject IN ('allow','refuse','revoke'));"
    "ALTER TABLE certificate ADD COLUMN account_id INTEGER;"
    "ALTER TABLE certificate ADD COLUMN device_id TEXT;"
    "CREATE INDEX certificate_subject ON certificate(ca_id, subject);"
    "CREATE TABLE account(id INTEGER PRIMARY KEY,"
    " endpoint_id INTEGER NOT NULL REFERENCES endpoint(id), name TEXT NOT NULL,"
    " organization TEXT NOT NULL DEFAULT '', department TEXT NOT NULL DEFAULT '',"
    " profile_id INTEGER REFERENCES profile(id), validity_days INTEGER NOT NULL DEFAULT 0,"
    " code_hash BLOB NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL, UNIQUE (endpoint_id, name));"
    "CREATE TABLE challenge(id INTEGER PRIMARY KEY,"
    " endpoint_id INTEGER NOT NULL REFERENCES endpoint(id), hash BLOB NOT NULL UNIQUE,"
    " subject TEXT NOT NULL DEFAULT '', sans TEXT NOT NULL DEFAULT '',"
    " device_id TEXT NOT NULL DEFAULT '', sid TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER, serial TEXT);"
    "CREATE INDEX challenge_open ON challenge(endpoint_id, used_at, expires_at);"
    "CREATE TABLE token_nonce(endpoint_id INTEGER NOT NULL, nonce TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, serial TEXT, PRIMARY KEY (endpoint_id, nonce));"
    "CREATE TABLE outbox(id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,"
    " endpoint_id INTEGER, kind TEXT NOT NULL CHECK (kind IN ('success','failure')),"
    " payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending'"
    "  CHECK (status IN ('pending','delivered','dead','local')),"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,"
    " delivered_at INTEGER, last_error TEXT);"
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, object TEXT NOT NULL DEFAULT '', endpoint TEXT NOT NULL DEFAULT '',"
    " outcome TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX audit_at ON audit(at);",
    /* 5 -> 6: a pending request keeps the authorization it was made under (for approval) */
    "ALTER TABLE request ADD COLUMN authz TEXT;",
    /*
     * 6 -> 7: what the minute's housekeeping deletes is found by its age.
     * Without these it scanned every settled event (one per issuance, kept
     * 30 days) inside a write transaction: 0.9 s with 1,000,000 of them,
     * every minute, while every issuance waited for the lock.
     */
    "CREATE INDEX outbox_created ON outbox(created_at);"
    "CREATE INDEX challenge_expires ON challenge(expires_at);"
    "CREATE INDEX challenge_used ON challenge(used_at) WHERE used_at IS NOT NULL;"
    "CREATE INDEX token_nonce_expires ON token_nonce(expires_at);",
};

static enum scep_err
map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return SCEP_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SCEP_E_STORE_BUSY;
    case SQLITE_CONSTRAINT:
        return SCEP_E_CONFLICT;
    case SQLITE_NOMEM:
        return SCEP_E_NOMEM;
    default:
        return SCEP_E_STORE;
    }
}

static void
log_sqlite(sqlite3 *db, const char *what, int rc)
{
    scep_log(SCEP_LOG_ERROR, "store", "sqlite failed op=%s rc=%d err=\"%s\"", what, rc,
             db != NULL ? sqlite3_errmsg(db) : "?");
}

static enum scep_err
exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        scep_log(SCEP_LOG_ERROR, "store", "sqlite exec failed rc=%d err=\"%s\"", rc,
                 msg ? msg : "?");
        sqlite3_free(msg);
        return map_rc(rc);
    }
    return SCEP_OK;
}

static enum scep_err
conn_open(const char *path, int flags, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    enum scep_err e;

    *out = NULL;
    if (rc != SQLITE_OK) {
        log_sqlite(db, "open", rc);
        sqlite3_close(db);
        return SCEP_E_STORE;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /*
     * temp_store=MEMORY: each issuance in a group commit has its own
     * SAVEPOINT, whose statement journal was otherwise a temporary file:
     * about 6 page writes per enrollment to a file nobody reads (strace).
     */
    if ((e = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                      " PRAGMA temp_store=MEMORY;")) != SCEP_OK) {
        sqlite3_close(db);
        return e;
    }
    *out = db;
    return SCEP_OK;
}

static enum scep_err
acquire(struct scep_store *s, sqlite3 **db)
{
    pthread_mutex_lock(&s->mu);
    if (s->nfree > 0) {
        *db = s->free_conns[--s->nfree];
        pthread_mutex_unlock(&s->mu);
        return SCEP_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return conn_open(s->path, SQLITE_OPEN_READWRITE, db);
}

/* Close a pooled connection with the statements it kept (prep_kept). */
static void
conn_close(sqlite3 *db)
{
    sqlite3_stmt *st;

    while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
        sqlite3_finalize(st);
    sqlite3_close(db);
}

static void
release(struct scep_store *s, sqlite3 *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->nfree < POOL_MAX) {
        s->free_conns[s->nfree++] = db;
        db = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (db != NULL)
        conn_close(db);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st);
static enum scep_err begin_write(struct scep_store *s, sqlite3 **db);
static enum scep_err end_write(struct scep_store *s, sqlite3 *db, enum scep_err rc);

/* Bring the schema to SCHEMA_VERSION_LATEST, one version per transaction. */
static enum scep_err
migrate(struct scep_store *s)
{
    enum scep_err rc;
    sqlite3 *db = NULL;
    char ver[16], next[24];
    long long v;

    for (;;) {
        if ((rc = scep_store_get_meta(s, "schema_version", ver, sizeof(ver))) != SCEP_OK)
            return rc;
        if (scep_strtonum(ver, 1, 1000, &v) != SCEP_OK || v > SCHEMA_VERSION_LATEST) {
            scep_log(SCEP_LOG_ERROR, "store",
                     "database schema version=%s is newer than this scepd knows (%d); run the "
                     "scepd that wrote it",
                     ver, SCHEMA_VERSION_LATEST);
            return SCEP_E_STORE;
        }
        if (v == SCHEMA_VERSION_LATEST)
            return SCEP_OK;
        if ((rc = acquire(s, &db)) != SCEP_OK)
            return rc;
        snprintf(next, sizeof(next), "%lld", v + 1);
        if ((rc = exec(db, "BEGIN IMMEDIATE")) == SCEP_OK) {
            if ((rc = exec(db, migrations[v - 1])) != SCEP_OK) {
                (void)exec(db, "ROLLBACK");
            } else {
                sqlite3_stmt *st = NULL;
                if (prep(db, "UPDATE meta SET v = ? WHERE k = 'schema_version'", &st) ==
                    SQLITE_OK) {
                    sqlite3_bind_text(st, 1, next, -1, SQLITE_STATIC);
                    rc = map_rc(sqlite3_step(st));
                } else {
                    rc = SCEP_E_STORE;
                }
                sqlite3_finalize(st);
                rc = rc == SCEP_OK ? exec(db, "COMMIT") : rc;
                if (rc != SCEP_OK)
                    (void)exec(db, "ROLLBACK");
                else
                    scep_log(SCEP_LOG_INFO, "store", "migrated schema from=%lld to=%s", v, next);
            }
        }
        release(s, db);
        db = NULL;
        if (rc != SCEP_OK)
            return rc;
    }
}

enum scep_err
scep_store_open(const char *path, int create, struct scep_store **out)
{
    struct scep_store *s = NULL;
    sqlite3 *db = NULL;
    enum scep_err rc;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(path)) == NULL) {
        rc = SCEP_E_NOMEM;
        goto out;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcond, NULL);
    pthread_cond_init(&s->ccond, NULL);
    rc = conn_open(
        path, create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE, &db);
    if (rc != SCEP_OK)
        goto out;
    if (create) {
        if ((rc = exec(db, "BEGIN IMMEDIATE")) != SCEP_OK)
            goto out;
        if ((rc = exec(db, schema)) != SCEP_OK ||
            (rc = exec(db, "INSERT INTO meta(k, v) VALUES ('schema_version', '1')")) != SCEP_OK) {
            (void)exec(db, "ROLLBACK");
            goto out;
        }
        if ((rc = exec(db, "COMMIT")) != SCEP_OK)
            goto out;
    }
    release(s, db);
    db = NULL;
    if ((rc = migrate(s)) != SCEP_OK)
        goto out;
    *out = s;
    s = NULL; /* transferred */
    rc = SCEP_OK;
out:
    sqlite3_close(db);
    scep_store_close(s);
    return rc;
}

void
scep_store_close(struct scep_store *s)
{
    int i;

    if (s == NULL)
        return;
    if (s->writer_running || s->ckpt_running) {
        pthread_mutex_lock(&s->wmu);
        s->stopping = 1;
        pthread_cond_signal(&s->wcond);
        pthread_cond_signal(&s->ccond);
        pthread_mutex_unlock(&s->wmu);
        if (s->writer_running)
            pthread_join(s->writer, NULL);
        if (s->ckpt_running)
            pthread_join(s->ckpt, NULL);
    }
    sqlite3_close(s->cdb);
    sqlite3_finalize(s->ins_req);
    sqlite3_finalize(s->ins_cert);
    for (i = 0; i < (int)(sizeof(s->wst) / sizeof(s->wst[0])); i++)
        sqlite3_finalize(s->wst[i]);
    sqlite3_close(s->wdb);
    for (i = 0; i < s->nfree; i++)
        conn_close(s->free_conns[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->wcond);
    pthread_cond_destroy(&s->ccond);
    free(s->path);
    free(s);
}

static int
prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

    if (rc != SQLITE_OK)
        log_sqlite(db, "prepare", rc);
    return rc;
}

/*
 * For the lookups every enrollment makes: the statement stays prepared on
 * its pooled connection (compiling it was most of the lookup's CPU), found
 * again by its text among the connection's idle statements.  Give it back
 * with unprep(), never sqlite3_finalize(); conn_close() finalizes it.  Only
 * for a statement nothing else runs on the connection while it is held.
 */
static int
prep_kept(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    sqlite3_stmt *p = NULL;
    int rc;

    while ((p = sqlite3_next_stmt(db, p)) != NULL) {
        if (!sqlite3_stmt_busy(p) && strcmp(sqlite3_sql(p), sql) == 0) {
            *st = p;
            return SQLITE_OK;
        }
    }
    if ((rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL)) != SQLITE_OK)
        log_sqlite(db, "prepare", rc);
    return rc;
}

/* Give a prep_kept() statement back: its read transaction ends, its bindings go. */
static void
unprep(sqlite3_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

enum scep_err
scep_store_get_meta(struct scep_store *s, const char *key, char *val, size_t vlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT v FROM meta WHERE k = ?", &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(val, vlen, "%s", v ? v : "");
        rc = SCEP_OK;
    } else if (r == SQLITE_DONE) {
        rc = SCEP_E_NO_ENTRY;
    } else {
        rc = map_rc(r);
    }
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_set_meta(struct scep_store *s, const char *key, const char *val)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(
             db, "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
             &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    rc = map_rc(sqlite3_step(st));
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

void
scep_ca_row_clear(struct scep_ca_row *r)
{
    free(r->cert_der);
    memset(r, 0, sizeof(*r));
}

enum scep_err
scep_store_add_ca(struct scep_store *s, const struct scep_ca_row *r, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db, "INSERT INTO ca(name, cert_der, key_ref, created_at) VALUES (?, ?, ?, ?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, r->cert_der, (int)r->cert_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

static unsigned char *
dup_blob(sqlite3_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    unsigned char *d;

    *len = 0;
    if (p == NULL || n <= 0)
        return NULL;
    if ((d = malloc((size_t)n)) == NULL)
        return NULL;
    memcpy(d, p, (size_t)n);
    *len = (size_t)n;
    return d;
}

static void
col_text(sqlite3_stmt *st, int col, char *dst, size_t dlen)
{
    const char *v = (const char *)sqlite3_column_text(st, col);

    snprintf(dst, dlen, "%s", v ? v : "");
}

enum scep_err
scep_store_get_ca(struct scep_store *s, int64_t id, struct scep_ca_row *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    memset(out, 0, sizeof(*out));
    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT id, name, cert_der, key_ref FROM ca WHERE id = ?", &st)) !=
        SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        col_text(st, 1, out->name, sizeof(out->name));
        out->cert_der = dup_blob(st, 2, &out->cert_len);
        col_text(st, 3, out->key_ref, sizeof(out->key_ref));
        rc = out->cert_der != NULL ? SCEP_OK : SCEP_E_NOMEM;
    } else {
        rc = r == SQLITE_DONE ? SCEP_E_NO_ENTRY : map_rc(r);
    }
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

void
scep_endpoint_row_clear(struct scep_endpoint_row *r)
{
    free(r->ra_cert_der);
    free(r->next_ra_cert_der);
    memset(r, 0, sizeof(*r));
}

enum scep_err
scep_store_add_endpoint(struct scep_store *s, const struct scep_endpoint_row *r, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    x = prep(db,
             "INSERT INTO endpoint(name, ca_id, ra_cert_der, ra_key_ref, challenge_mode,"
             " challenge_hash, getcacert_format, allow_des, advertise_post, validity_days, enabled,"
             " created_at, approval, renewal_window_days, renewal_grace_days, revoke_on_renewal,"
             " getcert_format, organization, department, profile_id, mode_config, notify_url,"
             " max_outstanding) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
             &st);
    if (x != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->ca_id);
    sqlite3_bind_blob(st, 3, r->ra_cert_der, (int)r->ra_cert_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->ra_key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->challenge_mode, -1, SQLITE_STATIC);
    if (r->has_challenge_hash)
        sqlite3_bind_blob(st, 6, r->challenge_hash, sizeof(r->challenge_hash), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_text(st, 7, r->getcacert_format, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, r->allow_des);
    sqlite3_bind_int(st, 9, r->advertise_post);
    sqlite3_bind_int(st, 10, r->validity_days);
    sqlite3_bind_int(st, 11, r->enabled);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 13, r->approval_manual ? "manual" : "auto", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, r->renewal_window_days);
    sqlite3_bind_int(st, 15, r->renewal_grace_days);
    sqlite3_bind_int(st, 16, r->revoke_on_renewal);
    sqlite3_bind_text(st, 17, r->getcert_chain ? "chain" : "single", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 18, r->organization, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 19, r->department, -1, SQLITE_STATIC);
    if (r->profile_id > 0)
        sqlite3_bind_int64(st, 20, r->profile_id);
    else
        sqlite3_bind_null(st, 20);
    sqlite3_bind_text(st, 21, r->mode_config[0] ? r->mode_config : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 22, r->notify_url, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 23, r->max_outstanding > 0 ? r->max_outstanding : 10000);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_each_endpoint(struct scep_store *s, scep_endpoint_cb cb, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    r = prep(db,
             "SELECT id, name, ca_id, ra_cert_der, ra_key_ref, challenge_mode, challenge_hash,"
             " getcacert_format, allow_des, advertise_post, validity_days, enabled, approval,"
             " renewal_window_days, renewal_grace_days, revoke_on_renewal, getcert_format,"
             " next_ra_cert_der, next_ra_key_ref, organization, department, profile_id,"
             " mode_config, notify_url, max_outstanding FROM endpoint ORDER BY id",
             &st);
    if (r != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct scep_endpoint_row e;
        const void *h;
        int stop;

        memset(&e, 0, sizeof(e));
        e.id = sqlite3_column_int64(st, 0);
        col_text(st, 1, e.name, sizeof(e.name));
        e.ca_id = sqlite3_column_int64(st, 2);
        e.ra_cert_der = dup_blob(st, 3, &e.ra_cert_len);
        col_text(st, 4, e.ra_key_ref, sizeof(e.ra_key_ref));
        col_text(st, 5, e.challenge_mode, sizeof(e.challenge_mode));
        h = sqlite3_column_blob(st, 6);
        if (h != NULL && sqlite3_column_bytes(st, 6) == (int)sizeof(e.challenge_hash)) {
            memcpy(e.challenge_hash, h, sizeof(e.challenge_hash));
            e.has_challenge_hash = 1;
        }
        col_text(st, 7, e.getcacert_format, sizeof(e.getcacert_format));
        e.allow_des = sqlite3_column_int(st, 8);
        e.advertise_post = sqlite3_column_int(st, 9);
        e.validity_days = sqlite3_column_int(st, 10);
        e.enabled = sqlite3_column_int(st, 11);
        e.approval_manual = sqlite3_column_text(st, 12) != NULL &&
                            strcmp((const char *)sqlite3_column_text(st, 12), "manual") == 0;
        e.renewal_window_days = sqlite3_column_int(st, 13);
        e.renewal_grace_days = sqlite3_column_int(st, 14);
        e.revoke_on_renewal = sqlite3_column_int(st, 15);
        e.getcert_chain = sqlite3_column_text(st, 16) != NULL &&
                          strcmp((const char *)sqlite3_column_text(st, 16), "chain") == 0;
        if (sqlite3_column_type(st, 17) == SQLITE_BLOB) {
            e.next_ra_cert_der = dup_blob(st, 17, &e.next_ra_cert_len);
            col_text(st, 18, e.next_ra_key_ref, sizeof(e.next_ra_key_ref));
        }
        col_text(st, 19, e.organization, sizeof(e.organization));
        col_text(st, 20, e.department, sizeof(e.department));
        e.profile_id = sqlite3_column_int64(st, 21);
        col_text(st, 22, e.mode_config, sizeof(e.mode_config));
        col_text(st, 23, e.notify_url, sizeof(e.notify_url));
        e.max_outstanding = sqlite3_column_int(st, 24);
        if (e.ra_cert_der == NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
        stop = cb(arg, &e);
        scep_endpoint_row_clear(&e);
        if (stop) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_update_endpoint(struct scep_store *s, const struct scep_endpoint_row *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    x = prep(db,
             "UPDATE endpoint SET challenge_mode = ?, challenge_hash = ?, getcacert_format = ?,"
             " allow_des = ?, advertise_post = ?, validity_days = ?, enabled = ?, approval = ?,"
             " renewal_window_days = ?, renewal_grace_days = ?, revoke_on_renewal = ?,"
             " getcert_format = ?, profile_id = ?, mode_config = ?, notify_url = ?,"
             " max_outstanding = ? WHERE id = ?",
             &st);
    if (x != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_text(st, 1, r->challenge_mode, -1, SQLITE_STATIC);
    if (r->has_challenge_hash)
        sqlite3_bind_blob(st, 2, r->challenge_hash, sizeof(r->challenge_hash), SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, r->getcacert_format, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, r->allow_des);
    sqlite3_bind_int(st, 5, r->advertise_post);
    sqlite3_bind_int(st, 6, r->validity_days);
    sqlite3_bind_int(st, 7, r->enabled);
    sqlite3_bind_text(st, 8, r->approval_manual ? "manual" : "auto", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, r->renewal_window_days);
    sqlite3_bind_int(st, 10, r->renewal_grace_days);
    sqlite3_bind_int(st, 11, r->revoke_on_renewal);
    sqlite3_bind_text(st, 12, r->getcert_chain ? "chain" : "single", -1, SQLITE_STATIC);
    if (r->profile_id > 0)
        sqlite3_bind_int64(st, 13, r->profile_id);
    else
        sqlite3_bind_null(st, 13);
    sqlite3_bind_text(st, 14, r->mode_config[0] ? r->mode_config : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, r->notify_url, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 16, r->max_outstanding > 0 ? r->max_outstanding : 10000);
    sqlite3_bind_int64(st, 17, r->id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_NO_ENTRY;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

static enum scep_req_status
status_from_text(const char *t)
{
    if (strcmp(t, "issued") == 0)
        return SCEP_REQ_ISSUED;
    if (strcmp(t, "pending") == 0)
        return SCEP_REQ_PENDING;
    if (strcmp(t, "rejected") == 0)
        return SCEP_REQ_REJECTED;
    return SCEP_REQ_FAILED;
}

static const char *
status_text(enum scep_req_status st)
{
    switch (st) {
    case SCEP_REQ_ISSUED:
        return "issued";
    case SCEP_REQ_PENDING:
        return "pending";
    case SCEP_REQ_REJECTED:
        return "rejected";
    case SCEP_REQ_FAILED:
        return "failed";
    }
    return "failed";
}

enum scep_err
scep_store_find_request(struct scep_store *s, int64_t endpoint_id, const unsigned char *txid,
                        size_t txid_len, struct scep_request_row *out, unsigned char **cert_der,
                        size_t *cert_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    char status[16];
    int r;

    memset(out, 0, sizeof(*out));
    if (cert_der != NULL) {
        *cert_der = NULL;
        *cert_len = 0;
    }
    if (txid_len > sizeof(out->txid))
        return SCEP_E_INVALID_ARG;
    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    r = prep_kept(db,
                  "SELECT r.id, r.key_hash, r.csr_hash, r.msgtype, r.status, r.serial, c.der,"
                  " r.reject_reason FROM request r LEFT JOIN certificate c ON c.serial = r.serial"
                  " WHERE r.endpoint_id = ? AND r.txid = ?",
                  &st);
    if (r != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, endpoint_id);
    sqlite3_bind_blob(st, 2, txid, (int)txid_len, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = SCEP_E_NO_ENTRY;
        goto out;
    }
    if (r != SQLITE_ROW) {
        rc = map_rc(r);
        goto out;
    }
    out->id = sqlite3_column_int64(st, 0);
    out->endpoint_id = endpoint_id;
    memcpy(out->txid, txid, txid_len);
    out->txid_len = txid_len;
    if (sqlite3_column_bytes(st, 1) == 32)
        memcpy(out->key_hash, sqlite3_column_blob(st, 1), 32);
    if (sqlite3_column_bytes(st, 2) == 32)
        memcpy(out->csr_hash, sqlite3_column_blob(st, 2), 32);
    out->msgtype = sqlite3_column_int(st, 3);
    col_text(st, 4, status, sizeof(status));
    out->status = status_from_text(status);
    col_text(st, 5, out->serial, sizeof(out->serial));
    col_text(st, 7, out->reason, sizeof(out->reason));
    if (cert_der != NULL && sqlite3_column_type(st, 6) == SQLITE_BLOB) {
        *cert_der = dup_blob(st, 6, cert_len);
        if (*cert_der == NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
    }
    rc = SCEP_OK;
out:
    unprep(st);
    release(s, db);
    return rc;
}

/*
 * Group commit.  Issuances are queued to one writer thread that commits
 * them in batches: one BEGIN IMMEDIATE ... COMMIT (one WAL fsync) for every
 * issuance waiting at that moment, each inside its own SAVEPOINT so that a
 * duplicate transactionID or serial fails alone.  A caller is released only
 * after the COMMIT of its batch returned (durable), with its own result.
 */

#define BATCH_MAX 128

static int
bind_request(sqlite3_stmt *st, const struct scep_commit *j, int64_t now)
{
    sqlite3_bind_int64(st, 1, j->req->endpoint_id);
    sqlite3_bind_blob(st, 2, j->req->txid, (int)j->req->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, j->req->key_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, j->req->csr_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, j->csr, (int)j->csr_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, j->req->msgtype);
    sqlite3_bind_text(st, 7, status_text(j->req->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, j->cert->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, now);
    return sqlite3_bind_int64(st, 10, now);
}

static int
bind_cert(sqlite3_stmt *st, const struct scep_cert_row *c, int64_t req_id, int64_t now)
{
    sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->ca_id);
    sqlite3_bind_int64(st, 3, c->endpoint_id);
    sqlite3_bind_int64(st, 4, req_id);
    sqlite3_bind_text(st, 5, c->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->sans, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, c->sha1, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, c->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, c->not_before);
    sqlite3_bind_int64(st, 10, c->not_after);
    sqlite3_bind_blob(st, 11, c->der, (int)c->der_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, c->status ? c->status : "valid", -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, c->txid, (int)c->txid_len, SQLITE_STATIC);
    return sqlite3_bind_int64(st, 14, now);
}

enum {
    W_CONSUME,
    W_CHALLENGE_STATE,
    W_NONCE,
    W_REVOKE_SAME,
    W_COUNT_SAME,
    W_CERT_OWNER,
    W_EVENT,
    W_AUDIT,
};

static const char *const wsql[] = {
    [W_CONSUME] = "UPDATE challenge SET used_at = ?1, serial = ?2"
                  " WHERE id = ?3 AND used_at IS NULL AND expires_at > ?1",
    [W_CHALLENGE_STATE] = "SELECT used_at IS NOT NULL FROM challenge WHERE id = ?",
    [W_NONCE] = "INSERT INTO token_nonce(endpoint_id, nonce, expires_at, serial) VALUES (?,?,?,?)",
    [W_COUNT_SAME] = "SELECT count(*) FROM certificate WHERE ca_id = ?1 AND subject = ?2"
                     " AND status = 'valid' AND not_after > ?3 AND serial <> ?4",
    [W_REVOKE_SAME] = "UPDATE certificate SET status = 'revoked', revoked_at = ?1,"
                      " revocation_reason = 4 WHERE ca_id = ?2 AND subject = ?3"
                      " AND status = 'valid' AND serial <> ?4",
    [W_CERT_OWNER] = "UPDATE certificate SET account_id = ?, device_id = ? WHERE serial = ?",
    [W_EVENT] = "INSERT INTO outbox(created_at, endpoint_id, kind, payload, status,"
                " next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?1)",
    [W_AUDIT] = "INSERT INTO audit(at, actor, action, object, endpoint, outcome, reason)"
                " VALUES (?,?,?,?,?,?,?)",
};

/*
 * A statement of wsql on db: from cache (the writer's, prepared on first
 * use and kept) or, with cache NULL, prepared for one use (wstep finalizes).
 */
static sqlite3_stmt *
stmt_on(sqlite3 *db, sqlite3_stmt **cache, int which)
{
    sqlite3_stmt *st = cache != NULL ? cache[which] : NULL;

    if (st == NULL) {
        if (sqlite3_prepare_v3(db, wsql[which], -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                               NULL) != SQLITE_OK) {
            log_sqlite(db, "prepare", sqlite3_errcode(db));
            sqlite3_finalize(st);
            return NULL;
        }
        if (cache != NULL)
            cache[which] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* A writer statement (cached). */
static sqlite3_stmt *
wstmt(struct scep_store *s, int which)
{
    return stmt_on(s->wdb, s->wst, which);
}

static int
wstep(sqlite3_stmt *st)
{
    int r = sqlite3_step(st);

    sqlite3_reset(st);
    return r;
}

/* Step a statement of stmt_on: reset when cached, finalized when not. */
static int
step_on(sqlite3_stmt **cache, sqlite3_stmt *st)
{
    int r = wstep(st);

    if (cache == NULL)
        sqlite3_finalize(st);
    return r;
}

/*
 * The records of a job (issuance or refusal) on db inside its open
 * transaction: for an issuance (serial) its account and device, then the
 * outbox event and the audit row; cache: the writer's statements, or NULL.
 */
static enum scep_err
insert_records(sqlite3 *db, sqlite3_stmt **cache, const struct scep_commit_extra *x,
               int64_t endpoint_id, const char *endpoint_name, const char *object,
               const char *serial, int64_t now)
{
    sqlite3_stmt *st;

    /* an issuance (serial): whose certificate it is */
    if (serial != NULL &&
        (x->account_id > 0 || (x->device_id != NULL && x->device_id[0] != '\0'))) {
        if ((st = stmt_on(db, cache, W_CERT_OWNER)) == NULL)
            return SCEP_E_STORE;
        if (x->account_id > 0)
            sqlite3_bind_int64(st, 1, x->account_id);
        if (x->device_id != NULL && x->device_id[0] != '\0')
            sqlite3_bind_text(st, 2, x->device_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
        if (step_on(cache, st) != SQLITE_DONE)
            return SCEP_E_STORE;
    }

    if (x->event_json != NULL) {
        if ((st = stmt_on(db, cache, W_EVENT)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, now);
        if (endpoint_id > 0)
            sqlite3_bind_int64(st, 2, endpoint_id);
        sqlite3_bind_text(st, 3, x->event_kind ? x->event_kind : "success", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, x->event_json, -1, SQLITE_STATIC);
        /* delivered only where a receiver is configured: the caller says which */
        sqlite3_bind_text(st, 5, x->event_pending ? "pending" : "local", -1, SQLITE_STATIC);
        if (step_on(cache, st) != SQLITE_DONE) {
            log_sqlite(db, "insert event", sqlite3_errcode(db));
            return SCEP_E_STORE;
        }
    }
    if (x->audit_actor != NULL) {
        if ((st = stmt_on(db, cache, W_AUDIT)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, x->audit_actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, x->audit_action ? x->audit_action : "issue", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, object ? object : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, endpoint_name ? endpoint_name : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, x->audit_outcome ? x->audit_outcome : "ok", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, x->audit_reason ? x->audit_reason : "", -1, SQLITE_STATIC);
        if (step_on(cache, st) != SQLITE_DONE) {
            log_sqlite(db, "insert audit", sqlite3_errcode(db));
            return SCEP_E_STORE;
        }
    }
    return SCEP_OK;
}

/* What an issuance changes besides its two rows (see struct scep_commit_extra). */
static enum scep_err
insert_extra(struct scep_store *s, const struct scep_commit *j, int64_t now)
{
    const struct scep_commit_extra *x = j->extra;
    sqlite3_stmt *st;
    int r;

    if (x->consume_challenge > 0) {
        if ((st = wstmt(s, W_CONSUME)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, j->cert->serial, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->consume_challenge);
        if (wstep(st) != SQLITE_DONE)
            return SCEP_E_STORE;
        if (sqlite3_changes(s->wdb) != 1) {
            /* used by a concurrent request first, or expired meanwhile */
            int used = 0;
            if ((st = wstmt(s, W_CHALLENGE_STATE)) == NULL)
                return SCEP_E_STORE;
            sqlite3_bind_int64(st, 1, x->consume_challenge);
            if (sqlite3_step(st) == SQLITE_ROW)
                used = sqlite3_column_int(st, 0);
            sqlite3_reset(st);
            return used ? SCEP_E_CHALLENGE_USED : SCEP_E_CHALLENGE_EXPIRED;
        }
    }
    if (x->nonce != NULL) {
        if ((st = wstmt(s, W_NONCE)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, j->req->endpoint_id);
        sqlite3_bind_text(st, 2, x->nonce, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->nonce_expires);
        sqlite3_bind_text(st, 4, j->cert->serial, -1, SQLITE_STATIC);
        r = wstep(st);
        if (r != SQLITE_DONE)
            return map_rc(r) == SCEP_E_CONFLICT ? SCEP_E_CHALLENGE_USED : SCEP_E_STORE;
    }
    if (x->refuse_same_subject) {
        /* checked again inside the commit: two first requests for one subject cannot both win */
        int64_t n = -1;
        if ((st = wstmt(s, W_COUNT_SAME)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, j->cert->ca_id);
        sqlite3_bind_text(st, 2, j->cert->subject, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_text(st, 4, j->cert->serial, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (n < 0)
            return SCEP_E_STORE;
        if (n > 0)
            return SCEP_E_DUPLICATE_SUBJECT;
    }
    if (x->revoke_same_subject) {
        if ((st = wstmt(s, W_REVOKE_SAME)) == NULL)
            return SCEP_E_STORE;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, j->cert->ca_id);
        sqlite3_bind_text(st, 3, j->cert->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, j->cert->serial, -1, SQLITE_STATIC);
        if (wstep(st) != SQLITE_DONE)
            return SCEP_E_STORE;
    }
    return insert_records(s->wdb, s->wst, x, j->req->endpoint_id, x->endpoint_name, j->cert->serial,
                          j->cert->serial, now);
}

/* Both rows of one job inside the open transaction; rolled back alone on failure. */
static enum scep_err
insert_job(struct scep_store *s, struct scep_commit *j, int64_t now)
{
    sqlite3 *db = s->wdb;
    enum scep_err rc;
    int r;

    if ((r = sqlite3_exec(db, "SAVEPOINT job", NULL, NULL, NULL)) != SQLITE_OK) {
        log_sqlite(db, "savepoint", r);
        return SCEP_E_STORE;
    }
    if (j->req == NULL) {
        /* a refusal: its event and audit row only */
        if ((rc = insert_records(s->wdb, s->wst, j->extra, j->endpoint_id, j->extra->endpoint_name,
                                 j->extra->object, NULL, now)) != SCEP_OK)
            goto undo;
        goto release;
    }
    sqlite3_reset(s->ins_req);
    sqlite3_clear_bindings(s->ins_req);
    bind_request(s->ins_req, j, now);
    r = sqlite3_step(s->ins_req);
    if (r != SQLITE_DONE) {
        /* UNIQUE(endpoint_id, txid): a concurrent duplicate committed first. */
        rc = map_rc(r);
        if (rc != SCEP_E_CONFLICT)
            log_sqlite(db, "insert request", r);
        goto undo;
    }
    sqlite3_reset(s->ins_cert);
    sqlite3_clear_bindings(s->ins_cert);
    bind_cert(s->ins_cert, j->cert, sqlite3_last_insert_rowid(db), now);
    r = sqlite3_step(s->ins_cert);
    if (r != SQLITE_DONE) {
        rc = map_rc(r);
        if (rc == SCEP_E_CONFLICT)
            rc = SCEP_E_EXISTS; /* serial collision: the caller draws again */
        else
            log_sqlite(db, "insert certificate", r);
        goto undo;
    }
    if (j->supersede != NULL) {
        /* the renewed certificate is revoked as superseded (RFC 5280 reason 4) */
        sqlite3_stmt *up = NULL;
        r = prep(db,
                 "UPDATE certificate SET status = 'revoked', revoked_at = ?,"
                 " revocation_reason = 4 WHERE serial = ? AND status = 'valid'",
                 &up);
        if (r == SQLITE_OK) {
            sqlite3_bind_int64(up, 1, now);
            sqlite3_bind_text(up, 2, j->supersede, -1, SQLITE_STATIC);
            r = sqlite3_step(up);
        }
        sqlite3_finalize(up);
        if (r != SQLITE_DONE) {
            log_sqlite(db, "supersede", r);
            rc = SCEP_E_STORE;
            goto undo;
        }
    }
    if (j->extra != NULL && (rc = insert_extra(s, j, now)) != SCEP_OK)
        goto undo;
    sqlite3_reset(s->ins_req);
    sqlite3_reset(s->ins_cert);
release:
    if ((r = sqlite3_exec(db, "RELEASE job", NULL, NULL, NULL)) != SQLITE_OK) {
        log_sqlite(db, "release", r);
        return SCEP_E_STORE;
    }
    return SCEP_OK;
undo:
    sqlite3_reset(s->ins_req);
    sqlite3_reset(s->ins_cert);
    sqlite3_exec(db, "ROLLBACK TO job; RELEASE job", NULL, NULL, NULL);
    return rc;
}

static void
run_batch(struct scep_store *s, struct scep_commit *batch)
{
    struct scep_commit *j;
    int64_t now = (int64_t)time(NULL);
    enum scep_err all = SCEP_OK;
    int r;

    if ((r = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) {
        log_sqlite(s->wdb, "begin", r);
        all = map_rc(r) == SCEP_E_STORE_BUSY ? SCEP_E_STORE_BUSY : SCEP_E_STORE;
    }
    for (j = batch; all == SCEP_OK && j != NULL; j = j->next)
        j->rc = insert_job(s, j, now);
    if (all == SCEP_OK && (r = sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        /* Nothing of this batch is durable: every job fails, none is half-done. */
        log_sqlite(s->wdb, "commit", r);
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        all = map_rc(r) == SCEP_E_STORE_BUSY ? SCEP_E_STORE_BUSY : SCEP_E_STORE;
    }
    if (all != SCEP_OK)
        for (j = batch; j != NULL; j = j->next)
            j->rc = all;
}

/*
 * Checkpoints.  SQLite's automatic checkpoint runs inside the COMMIT that
 * takes the WAL past 1000 pages: it copies them into the database file and
 * fsyncs it while every issuance queued behind that batch waits (a stall
 * of up to ~10 ms every ~125 enrollments at 8 clients here).  Instead the
 * writer's connection only reports the WAL's size, and a checkpointer
 * thread on its own connection copies and syncs concurrently with further
 * commits (PASSIVE: it never blocks the writer).  A checkpoint that runs
 * while the writer keeps appending never reaches the WAL's end, and the
 * WAL restarts from its beginning only once one has; so after each of the
 * checkpointer's passes the writer, between two batches, checkpoints the
 * pages written meanwhile itself (as SQLite would have, with less left to
 * do), and the checkpointer's next pass waits for that.  Should the
 * checkpointer fall behind, the writer checkpoints at CKPT_FORCE_PAGES
 * whatever the state.  The WAL stays at ~4 MB (test_store_wal_bounded).
 */
#define CKPT_PAGES 1000
#define CKPT_FORCE_PAGES 16000

static int
on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct scep_store *s = arg;

    (void)db;
    (void)name;
    pthread_mutex_lock(&s->wmu);
    s->wal_pages = pages;
    if (pages >= CKPT_PAGES && s->ckpt_running) {
        s->ckpt_wanted = 1;
        pthread_cond_signal(&s->ccond);
    }
    pthread_mutex_unlock(&s->wmu);
    return SQLITE_OK;
}

static void *
ckpt_main(void *arg)
{
    struct scep_store *s = arg;
    int r;

    (void)pthread_setname_np(pthread_self(), "scepd-ckpt");
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        /* After a pass, the next waits for the writer's share (writer_checkpoint). */
        while ((!s->ckpt_wanted || s->ckpt_caught_up) && !s->stopping)
            pthread_cond_wait(&s->ccond, &s->wmu);
        if (s->stopping)
            break;
        s->ckpt_wanted = 0;
        pthread_mutex_unlock(&s->wmu);
        r = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (r != SQLITE_OK && r != SQLITE_BUSY)
            log_sqlite(s->cdb, "checkpoint", r);
        pthread_mutex_lock(&s->wmu);
        s->ckpt_caught_up = 1;
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* The writer's share of checkpointing (called with wmu held, returns with it held). */
static void
writer_checkpoint(struct scep_store *s)
{
    int r;

    if (s->ckpt_caught_up && s->wal_pages < CKPT_PAGES) {
        /* The WAL restarted since that pass: nothing to finish. */
        s->ckpt_caught_up = 0;
        pthread_cond_signal(&s->ccond);
        return;
    }
    if (s->wal_pages < CKPT_PAGES ||
        !(s->ckpt_caught_up || s->wal_pages >= CKPT_FORCE_PAGES || !s->ckpt_running))
        return;
    s->ckpt_caught_up = 0;
    pthread_mutex_unlock(&s->wmu);
    r = sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (r != SQLITE_OK && r != SQLITE_BUSY)
        log_sqlite(s->wdb, "checkpoint", r);
    pthread_mutex_lock(&s->wmu);
    s->wal_pages = 0;   /* known again after the next commit */
    s->ckpt_wanted = 0; /* what the hook asked for meanwhile is done */
    pthread_cond_signal(&s->ccond);
}

static void *
writer_main(void *arg)
{
    struct scep_store *s = arg;

    (void)pthread_setname_np(pthread_self(), "scepd-writer");
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        struct scep_commit *batch, *j;
        int n = 0;

        while (s->queue == NULL && !s->stopping)
            pthread_cond_wait(&s->wcond, &s->wmu);
        if (s->queue == NULL && s->stopping)
            break;
        /* Take up to BATCH_MAX jobs, oldest first. */
        batch = s->queue;
        for (j = batch; j->next != NULL && ++n < BATCH_MAX; j = j->next)
            ;
        s->queue = j->next;
        if (s->queue == NULL)
            s->queue_tail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&s->wmu);
        run_batch(s, batch);
        pthread_mutex_lock(&s->wmu);
        for (j = batch; j != NULL;) {
            struct scep_commit *next = j->next;
            if (j->detached) {
                free(j); /* nobody waits for a refusal's records */
            } else {
                /* Each waiter alone: a broadcast woke every worker for each batch. */
                j->done = 1;
                if (j->waiter != NULL)
                    pthread_cond_signal(j->waiter);
            }
            j = next;
        }
        writer_checkpoint(s);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

static enum scep_err
writer_start(struct scep_store *s)
{
    int r;

    if (s->writer_running)
        return SCEP_OK;
    if (conn_open(s->path, SQLITE_OPEN_READWRITE, &s->wdb) != SCEP_OK)
        return SCEP_E_STORE;
    r = sqlite3_prepare_v3(s->wdb,
                           "INSERT INTO request(endpoint_id, txid, key_hash, csr_hash, csr_der,"
                           " msgtype, status, serial, created_at, updated_at)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->ins_req, NULL);
    if (r == SQLITE_OK)
        r = sqlite3_prepare_v3(s->wdb,
                               "INSERT INTO certificate(serial, ca_id, endpoint_id, request_id,"
                               " subject, sans, sha1, sha256, not_before, not_after, der, status,"
                               " txid, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                               -1, SQLITE_PREPARE_PERSISTENT, &s->ins_cert, NULL);
    if (r != SQLITE_OK) {
        log_sqlite(s->wdb, "prepare", r);
        return SCEP_E_STORE;
    }
    /* Checkpoints by the checkpointer thread; without it, by the writer (writer_checkpoint). */
    sqlite3_wal_hook(s->wdb, on_wal, s);
    if (s->cdb == NULL && conn_open(s->path, SQLITE_OPEN_READWRITE, &s->cdb) == SCEP_OK &&
        pthread_create(&s->ckpt, NULL, ckpt_main, s) == 0)
        s->ckpt_running = 1;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return SCEP_E_INTERNAL;
    s->writer_running = 1;
    return SCEP_OK;
}

static enum scep_err
enqueue(struct scep_store *s, struct scep_commit *job)
{
    enum scep_err rc;

    pthread_mutex_lock(&s->wmu);
    if ((rc = writer_start(s)) != SCEP_OK) {
        pthread_mutex_unlock(&s->wmu);
        return rc;
    }
    if (s->queue_tail != NULL)
        s->queue_tail->next = job;
    else
        s->queue = job;
    s->queue_tail = job;
    pthread_cond_signal(&s->wcond);
    pthread_mutex_unlock(&s->wmu);
    return SCEP_OK;
}

enum scep_err
scep_store_commit_begin(struct scep_store *s, struct scep_commit *job,
                        const struct scep_request_row *req, const unsigned char *csr_der,
                        size_t csr_len, const struct scep_cert_row *cert, const char *supersede,
                        const struct scep_commit_extra *extra)
{
    memset(job, 0, sizeof(*job));
    job->extra = extra;
    job->supersede = supersede;
    job->req = req;
    job->csr = csr_der;
    job->csr_len = csr_len;
    job->cert = cert;
    return enqueue(s, job);
}

enum scep_err
scep_store_commit_wait(struct scep_store *s, struct scep_commit *job)
{
    pthread_cond_t cv;

    pthread_cond_init(&cv, NULL);
    pthread_mutex_lock(&s->wmu);
    job->waiter = &cv;
    while (!job->done)
        pthread_cond_wait(&cv, &s->wmu);
    job->waiter = NULL;
    pthread_mutex_unlock(&s->wmu);
    pthread_cond_destroy(&cv);
    return job->rc;
}

enum scep_err
scep_store_commit_issuance(struct scep_store *s, const struct scep_request_row *req,
                           const unsigned char *csr_der, size_t csr_len,
                           const struct scep_cert_row *cert)
{
    struct scep_commit job;
    enum scep_err rc;

    if ((rc = scep_store_commit_begin(s, &job, req, csr_der, csr_len, cert, NULL, NULL)) != SCEP_OK)
        return rc;
    return scep_store_commit_wait(s, &job);
}

enum scep_err
scep_store_each_cert(struct scep_store *s, scep_cert_cb cb, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    r = prep(
        db,
        "SELECT serial, ca_id, endpoint_id, subject, sans, sha1, sha256, not_before, not_after,"
        " status, txid FROM certificate ORDER BY created_at, rowid",
        &st);
    if (r != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct scep_cert_row c;

        memset(&c, 0, sizeof(c));
        col_text(st, 0, c.serial, sizeof(c.serial));
        c.ca_id = sqlite3_column_int64(st, 1);
        c.endpoint_id = sqlite3_column_int64(st, 2);
        c.subject = (const char *)sqlite3_column_text(st, 3);
        c.sans = (const char *)sqlite3_column_text(st, 4);
        col_text(st, 5, c.sha1, sizeof(c.sha1));
        col_text(st, 6, c.sha256, sizeof(c.sha256));
        c.not_before = sqlite3_column_int64(st, 7);
        c.not_after = sqlite3_column_int64(st, 8);
        c.status = (const char *)sqlite3_column_text(st, 9);
        c.txid = sqlite3_column_blob(st, 10);
        c.txid_len = (size_t)sqlite3_column_bytes(st, 10);
        if (cb(arg, &c)) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

/* One write transaction on a pooled connection (admin paths, pending requests). */
static enum scep_err
begin_write(struct scep_store *s, sqlite3 **db)
{
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, db)) != SCEP_OK)
        return rc;
    if ((r = sqlite3_exec(*db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) {
        log_sqlite(*db, "begin", r);
        release(s, *db);
        *db = NULL;
        return map_rc(r) == SCEP_E_STORE_BUSY ? SCEP_E_STORE_BUSY : SCEP_E_STORE;
    }
    return SCEP_OK;
}

static enum scep_err
end_write(struct scep_store *s, sqlite3 *db, enum scep_err rc)
{
    int r;

    if (rc == SCEP_OK && (r = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        log_sqlite(db, "commit", r);
        rc = SCEP_E_STORE;
    }
    if (rc != SCEP_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_add_pending(struct scep_store *s, const struct scep_request_row *req,
                       const unsigned char *csr_der, size_t csr_len, const char *authz,
                       const struct scep_commit_extra *x, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t now = (int64_t)time(NULL);
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    /* the request's one-time challenge or token is used up by the request, now */
    if (x != NULL && x->consume_challenge > 0) {
        if ((st = stmt_on(db, NULL, W_CONSUME)) == NULL) {
            rc = SCEP_E_STORE;
            goto out;
        }
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 3, x->consume_challenge);
        r = step_on(NULL, st);
        st = NULL;
        if (r != SQLITE_DONE) {
            rc = SCEP_E_STORE;
            goto out;
        }
        if (sqlite3_changes(db) != 1) {
            rc = SCEP_E_CHALLENGE_USED; /* or expired meanwhile: either way, not usable */
            goto out;
        }
    }
    if (x != NULL && x->nonce != NULL) {
        if ((st = stmt_on(db, NULL, W_NONCE)) == NULL) {
            rc = SCEP_E_STORE;
            goto out;
        }
        sqlite3_bind_int64(st, 1, req->endpoint_id);
        sqlite3_bind_text(st, 2, x->nonce, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->nonce_expires);
        r = step_on(NULL, st);
        st = NULL;
        if (r != SQLITE_DONE) {
            rc = map_rc(r) == SCEP_E_CONFLICT ? SCEP_E_CHALLENGE_USED : SCEP_E_STORE;
            goto out;
        }
    }
    r = prep(db,
             "INSERT INTO request(endpoint_id, txid, key_hash, csr_hash, csr_der, msgtype, status,"
             " created_at, updated_at, authz) VALUES (?,?,?,?,?,?,'pending',?,?,?)",
             &st);
    if (r != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, req->endpoint_id);
    sqlite3_bind_blob(st, 2, req->txid, (int)req->txid_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, req->key_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, req->csr_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, csr_der, (int)csr_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, req->msgtype);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, now);
    if (authz != NULL)
        sqlite3_bind_text(st, 9, authz, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    rc = map_rc(r);
    if (rc == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
    else if (rc != SCEP_E_CONFLICT)
        log_sqlite(db, "insert pending", r);
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

static void
request_from_row(sqlite3_stmt *st, struct scep_request_row *out)
{
    char status[16];
    int n;

    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->endpoint_id = sqlite3_column_int64(st, 1);
    n = sqlite3_column_bytes(st, 2);
    if (n > 0 && (size_t)n <= sizeof(out->txid)) {
        memcpy(out->txid, sqlite3_column_blob(st, 2), (size_t)n);
        out->txid_len = (size_t)n;
    }
    if (sqlite3_column_bytes(st, 3) == 32)
        memcpy(out->key_hash, sqlite3_column_blob(st, 3), 32);
    if (sqlite3_column_bytes(st, 4) == 32)
        memcpy(out->csr_hash, sqlite3_column_blob(st, 4), 32);
    out->msgtype = sqlite3_column_int(st, 5);
    col_text(st, 6, status, sizeof(status));
    out->status = status_from_text(status);
    col_text(st, 7, out->serial, sizeof(out->serial));
    out->created_at = sqlite3_column_int64(st, 8);
    col_text(st, 9, out->reason, sizeof(out->reason));
    if (sqlite3_column_count(st) > 11)
        col_text(st, 11, out->authz, sizeof(out->authz));
}

#define REQUEST_COLUMNS                                                                            \
    "id, endpoint_id, txid, key_hash, csr_hash, msgtype, status, serial, created_at,"              \
    " reject_reason, csr_der, authz"

enum scep_err
scep_store_get_request(struct scep_store *s, int64_t id, struct scep_request_row *out,
                       unsigned char **csr, size_t *csr_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    memset(out, 0, sizeof(*out));
    *csr = NULL;
    *csr_len = 0;
    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT " REQUEST_COLUMNS " FROM request WHERE id = ?", &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        request_from_row(st, out);
        *csr = dup_blob(st, 10, csr_len);
        rc = *csr != NULL ? SCEP_OK : SCEP_E_NOMEM;
    } else {
        rc = r == SQLITE_DONE ? SCEP_E_NO_ENTRY : map_rc(r);
    }
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_complete_pending(struct scep_store *s, int64_t req_id, const struct scep_cert_row *cert,
                            const struct scep_commit_extra *x)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t now = (int64_t)time(NULL);
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    /* Compare-and-set: only a request still pending becomes issued. */
    if ((r = prep(db,
                  "UPDATE request SET status = 'issued', serial = ?, updated_at = ?"
                  " WHERE id = ? AND status = 'pending'",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, cert->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, req_id);
    if ((r = sqlite3_step(st)) != SQLITE_DONE) {
        rc = map_rc(r);
        goto out;
    }
    if (sqlite3_changes(db) != 1) {
        rc = SCEP_E_CONFLICT;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((r = prep(db,
                  "INSERT INTO certificate(serial, ca_id, endpoint_id, request_id, subject, sans,"
                  " sha1, sha256, not_before, not_after, der, status, txid, created_at)"
                  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    bind_cert(st, cert, req_id, now);
    if ((r = sqlite3_step(st)) != SQLITE_DONE) {
        rc = map_rc(r) == SCEP_E_CONFLICT ? SCEP_E_EXISTS : map_rc(r);
        if (rc != SCEP_E_EXISTS)
            log_sqlite(db, "insert certificate", r);
        goto out;
    }
    /* who it is for, its event and audit row, in the same transaction */
    if (x != NULL)
        rc = insert_records(db, NULL, x, cert->endpoint_id, x->endpoint_name, cert->serial,
                            cert->serial, now);
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_reject_pending(struct scep_store *s, int64_t req_id, const char *reason)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db,
                  "UPDATE request SET status = 'rejected', fail_info = 2, reject_reason = ?,"
                  " updated_at = ? WHERE id = ? AND status = 'pending'",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, reason ? reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
    sqlite3_bind_int64(st, 3, req_id);
    if ((r = sqlite3_step(st)) != SQLITE_DONE)
        rc = map_rc(r);
    else if (sqlite3_changes(db) != 1)
        rc = SCEP_E_CONFLICT;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_each_request(struct scep_store *s, const enum scep_req_status *status,
                        scep_request_cb cb, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    r = prep(db,
             status != NULL ? "SELECT " REQUEST_COLUMNS " FROM request WHERE status = ?"
                              " ORDER BY id DESC"
                            : "SELECT " REQUEST_COLUMNS " FROM request ORDER BY id DESC",
             &st);
    if (r != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    if (status != NULL)
        sqlite3_bind_text(st, 1, status_text(*status), -1, SQLITE_STATIC);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct scep_request_row row;
        const unsigned char *csr = sqlite3_column_blob(st, 10);
        int csrlen = sqlite3_column_bytes(st, 10);
        X509_REQ *req;

        request_from_row(st, &row);
        /* the subject is read from the stored CSR (already validated) */
        if (csr != NULL && csrlen > 0 && (req = d2i_X509_REQ(NULL, &csr, csrlen)) != NULL) {
            char *t = scep_name_to_text(X509_REQ_get_subject_name(req));
            if (t != NULL)
                snprintf(row.subject, sizeof(row.subject), "%s", t);
            free(t);
            X509_REQ_free(req);
        }
        if (cb(arg, &row)) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_get_cert(struct scep_store *s, const char *serial, struct scep_cert_info *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    memset(out, 0, sizeof(*out));
    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db,
                  "SELECT ca_id, endpoint_id, status, not_before, not_after, der FROM certificate"
                  " WHERE serial = ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const unsigned char *status = sqlite3_column_text(st, 2);
        out->ca_id = sqlite3_column_int64(st, 0);
        out->endpoint_id = sqlite3_column_int64(st, 1);
        out->revoked = status == NULL || strcmp((const char *)status, "valid") != 0;
        out->not_before = sqlite3_column_int64(st, 3);
        out->not_after = sqlite3_column_int64(st, 4);
        out->der = dup_blob(st, 5, &out->der_len);
        rc = out->der != NULL ? SCEP_OK : SCEP_E_NOMEM;
    } else {
        rc = r == SQLITE_DONE ? SCEP_E_NO_ENTRY : map_rc(r);
    }
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_archive_request(struct scep_store *s, int64_t req_id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db,
                  "UPDATE request SET txid = CAST(printf('~%d~', id) AS BLOB) || txid,"
                  " updated_at = ? WHERE id = ? AND status IN ('issued','rejected','failed')",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_int64(st, 2, req_id);
    if ((r = sqlite3_step(st)) != SQLITE_DONE)
        rc = map_rc(r);
    else if (sqlite3_changes(db) != 1)
        rc = SCEP_E_CONFLICT;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_revoke(struct scep_store *s, const char *serial, int reason, int64_t *ca_id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    *ca_id = 0;
    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT ca_id, status FROM certificate WHERE serial = ?", &st)) !=
        SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        rc = r == SQLITE_DONE ? SCEP_E_NO_ENTRY : map_rc(r);
        goto out;
    }
    *ca_id = sqlite3_column_int64(st, 0);
    if (sqlite3_column_text(st, 1) == NULL ||
        strcmp((const char *)sqlite3_column_text(st, 1), "valid") != 0) {
        rc = SCEP_E_CONFLICT;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((r = prep(db,
                  "UPDATE certificate SET status = 'revoked', revoked_at = ?, revocation_reason = ?"
                  " WHERE serial = ? AND status = 'valid'",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_int(st, 2, reason);
    sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
    rc = map_rc(sqlite3_step(st));
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_each_revoked(struct scep_store *s, int64_t ca_id, scep_revoked_cb cb, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db,
                  "SELECT serial, revoked_at, revocation_reason FROM certificate"
                  " WHERE ca_id = ? AND status = 'revoked' ORDER BY serial",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, ca_id);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
               sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2))) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_get_crl(struct scep_store *s, int64_t ca_id, int64_t *number, unsigned char **der,
                   size_t *der_len, int64_t *next_update)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    *der = NULL;
    *der_len = 0;
    *number = 0;
    *next_update = 0;
    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT crl_number, crl_der, crl_next_update FROM ca WHERE id = ?", &st)) !=
        SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, ca_id);
    r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        rc = r == SQLITE_DONE ? SCEP_E_NO_ENTRY : map_rc(r);
        goto out;
    }
    *number = sqlite3_column_int64(st, 0);
    *next_update = sqlite3_column_int64(st, 2);
    if (sqlite3_column_type(st, 1) != SQLITE_BLOB) {
        rc = SCEP_E_NO_ENTRY;
        goto out;
    }
    *der = dup_blob(st, 1, der_len);
    rc = *der != NULL ? SCEP_OK : SCEP_E_NOMEM;
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_set_crl(struct scep_store *s, int64_t ca_id, int64_t number, const unsigned char *der,
                   size_t der_len, int64_t next_update)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db,
                  "UPDATE ca SET crl_number = ?, crl_der = ?, crl_next_update = ?"
                  " WHERE id = ? AND crl_number < ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, number);
    sqlite3_bind_blob(st, 2, der, (int)der_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, next_update);
    sqlite3_bind_int64(st, 4, ca_id);
    sqlite3_bind_int64(st, 5, number);
    if ((r = sqlite3_step(st)) != SQLITE_DONE)
        rc = map_rc(r);
    else if (sqlite3_changes(db) != 1)
        rc = SCEP_E_CONFLICT;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_each_ca(struct scep_store *s, scep_ca_cb cb, void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "SELECT id, name, cert_der, key_ref, next_ca_id FROM ca ORDER BY id", &st)) !=
        SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct scep_ca_row ca;
        int stop;
        memset(&ca, 0, sizeof(ca));
        ca.id = sqlite3_column_int64(st, 0);
        col_text(st, 1, ca.name, sizeof(ca.name));
        ca.cert_der = dup_blob(st, 2, &ca.cert_len);
        col_text(st, 3, ca.key_ref, sizeof(ca.key_ref));
        ca.next_ca_id = sqlite3_column_int64(st, 4);
        if (ca.cert_der == NULL) {
            rc = SCEP_E_NOMEM;
            goto out;
        }
        stop = cb(arg, &ca);
        scep_ca_row_clear(&ca);
        if (stop) {
            rc = SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

enum scep_err
scep_store_prepare_rollover(struct scep_store *s, int64_t endpoint_id, int64_t ca_id,
                            const struct scep_ca_row *next, const unsigned char *ra_der,
                            size_t ra_len, const char *ra_key_ref, int64_t *next_id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, "INSERT INTO ca(name, cert_der, key_ref, created_at) VALUES (?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_text(st, 1, next->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, next->cert_der, (int)next->cert_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, next->key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
    if ((rc = map_rc(sqlite3_step(st))) != SCEP_OK)
        goto out;
    *next_id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    st = NULL;
    /* only a CA without a prepared successor, only the endpoint still on it */
    if ((r = prep(db, "UPDATE ca SET next_ca_id = ? WHERE id = ? AND next_ca_id IS NULL", &st)) !=
        SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, *next_id);
    sqlite3_bind_int64(st, 2, ca_id);
    if ((rc = map_rc(sqlite3_step(st))) != SCEP_OK)
        goto out;
    if (sqlite3_changes(db) != 1) {
        rc = SCEP_E_CONFLICT;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((r = prep(db,
                  "UPDATE endpoint SET next_ra_cert_der = ?, next_ra_key_ref = ?"
                  " WHERE id = ? AND ca_id = ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_blob(st, 1, ra_der, (int)ra_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ra_key_ref, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, endpoint_id);
    sqlite3_bind_int64(st, 4, ca_id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_CONFLICT;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_switch_ca(struct scep_store *s, int64_t endpoint_id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(
             db,
             "UPDATE endpoint SET ca_id = (SELECT next_ca_id FROM ca WHERE ca.id = endpoint.ca_id),"
             " ra_cert_der = next_ra_cert_der, ra_key_ref = next_ra_key_ref,"
             " next_ra_cert_der = NULL, next_ra_key_ref = NULL"
             " WHERE id = ? AND next_ra_cert_der IS NOT NULL"
             " AND (SELECT next_ca_id FROM ca WHERE ca.id = endpoint.ca_id) IS NOT NULL",
             &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    sqlite3_bind_int64(st, 1, endpoint_id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_NO_ENTRY;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

/* A parameter of each_row: an integer, text (t != NULL), a blob (b != NULL) or NULL. */
struct qarg {
    int64_t i;
    const char *t;
    const void *b;
    size_t blen;
    int null;
};

/*
 * Run sql on a pooled connection with args bound to ?1..?nargs and call
 * row(arg, st) for each result row: 0 goes on, > 0 stops (SCEP_OK), < 0
 * stops with SCEP_E_INTERNAL (a caller's callback asked to stop).
 */
static enum scep_err
each_row(struct scep_store *s, const char *sql, const struct qarg *args, int nargs,
         int (*row)(void *arg, sqlite3_stmt *st), void *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int r, i;

    if ((rc = acquire(s, &db)) != SCEP_OK)
        return rc;
    if ((r = prep(db, sql, &st)) != SQLITE_OK) {
        rc = map_rc(r);
        goto out;
    }
    for (i = 0; i < nargs; i++) {
        if (args[i].null)
            sqlite3_bind_null(st, i + 1);
        else if (args[i].t != NULL)
            sqlite3_bind_text(st, i + 1, args[i].t, -1, SQLITE_STATIC);
        else if (args[i].b != NULL)
            sqlite3_bind_blob(st, i + 1, args[i].b, (int)args[i].blen, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, i + 1, args[i].i);
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int k = row(arg, st);
        if (k != 0) {
            rc = k > 0 ? SCEP_OK : SCEP_E_INTERNAL;
            goto out;
        }
    }
    rc = r == SQLITE_DONE ? SCEP_OK : map_rc(r);
out:
    sqlite3_finalize(st);
    release(s, db);
    return rc;
}

/* A row function for one-value queries: the first column as an integer. */
static int
first_int(void *arg, sqlite3_stmt *st)
{
    *(int64_t *)arg = sqlite3_column_int64(st, 0);
    return 1;
}

static void
bind_profile(sqlite3_stmt *st, const struct scep_profile_row *r)
{
    if (r->template_name[0] != '\0')
        sqlite3_bind_text(st, 1, r->template_name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_int(st, 2, r->validity_days);
    sqlite3_bind_text(st, 3, r->eku, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->key_types, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->subject_allow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->subject_forbid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->san_types, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r->san_patterns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, r->key_usage, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, r->max_validity_days);
    sqlite3_bind_text(st, 11, r->cdp_url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, r->aia_url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, r->duplicate_subject[0] ? r->duplicate_subject : "allow", -1,
                      SQLITE_STATIC);
}

enum scep_err
scep_store_add_profile(struct scep_store *s, const struct scep_profile_row *r, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "INSERT INTO profile(template, validity_days, eku, key_types, subject_allow,"
                  " subject_forbid, san_types, san_patterns, key_usage, max_validity_days, cdp_url,"
                  " aia_url, duplicate_subject, name, created_at)"
                  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    bind_profile(st, r);
    sqlite3_bind_text(st, 14, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, (int64_t)time(NULL));
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

enum scep_err
scep_store_update_profile(struct scep_store *s, const struct scep_profile_row *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "UPDATE profile SET template = ?, validity_days = ?, eku = ?, key_types = ?,"
                  " subject_allow = ?, subject_forbid = ?, san_types = ?, san_patterns = ?,"
                  " key_usage = ?, max_validity_days = ?, cdp_url = ?, aia_url = ?,"
                  " duplicate_subject = ? WHERE id = ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    bind_profile(st, r);
    sqlite3_bind_int64(st, 14, r->id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_NO_ENTRY;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

struct profile_walk {
    scep_profile_cb cb;
    void *arg;
};

static int
profile_row(void *arg, sqlite3_stmt *st)
{
    struct profile_walk *w = arg;
    struct scep_profile_row p;

    memset(&p, 0, sizeof(p));
    p.id = sqlite3_column_int64(st, 0);
    col_text(st, 1, p.name, sizeof(p.name));
    col_text(st, 2, p.template_name, sizeof(p.template_name));
    p.validity_days = sqlite3_column_int(st, 3);
    col_text(st, 4, p.eku, sizeof(p.eku));
    col_text(st, 5, p.key_types, sizeof(p.key_types));
    col_text(st, 6, p.subject_allow, sizeof(p.subject_allow));
    col_text(st, 7, p.subject_forbid, sizeof(p.subject_forbid));
    col_text(st, 8, p.san_types, sizeof(p.san_types));
    col_text(st, 9, p.san_patterns, sizeof(p.san_patterns));
    col_text(st, 10, p.key_usage, sizeof(p.key_usage));
    p.max_validity_days = sqlite3_column_int(st, 11);
    col_text(st, 12, p.cdp_url, sizeof(p.cdp_url));
    col_text(st, 13, p.aia_url, sizeof(p.aia_url));
    col_text(st, 14, p.duplicate_subject, sizeof(p.duplicate_subject));
    return w->cb(w->arg, &p) ? -1 : 0;
}

enum scep_err
scep_store_each_profile(struct scep_store *s, scep_profile_cb cb, void *arg)
{
    struct profile_walk w = {cb, arg};

    return each_row(s,
                    "SELECT id, name, template, validity_days, eku, key_types, subject_allow,"
                    " subject_forbid, san_types, san_patterns, key_usage, max_validity_days,"
                    " cdp_url, aia_url, duplicate_subject FROM profile ORDER BY id",
                    NULL, 0, profile_row, &w);
}

enum scep_err
scep_store_count_valid_subject(struct scep_store *s, int64_t ca_id, const char *subject,
                               int64_t now, int64_t *count)
{
    struct qarg q[] = {{.i = ca_id}, {.t = subject}, {.i = now}};

    *count = 0;
    return each_row(s,
                    "SELECT count(*) FROM certificate WHERE ca_id = ? AND subject = ?"
                    " AND status = 'valid' AND not_after > ?",
                    q, 3, first_int, count);
}

/* ---- accounts ---- */

#define ACCOUNT_COLS                                                                               \
    "id, endpoint_id, name, organization, department, profile_id, validity_days, code_hash,"       \
    " enabled, created_at"

static void
account_from_row(sqlite3_stmt *st, struct scep_account_row *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    a->endpoint_id = sqlite3_column_int64(st, 1);
    col_text(st, 2, a->name, sizeof(a->name));
    col_text(st, 3, a->organization, sizeof(a->organization));
    col_text(st, 4, a->department, sizeof(a->department));
    a->profile_id = sqlite3_column_int64(st, 5);
    a->validity_days = sqlite3_column_int(st, 6);
    if (sqlite3_column_bytes(st, 7) == 32)
        memcpy(a->code_hash, sqlite3_column_blob(st, 7), 32);
    a->enabled = sqlite3_column_int(st, 8);
    a->created_at = sqlite3_column_int64(st, 9);
}

enum scep_err
scep_store_add_account(struct scep_store *s, const struct scep_account_row *r, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "INSERT INTO account(endpoint_id, name, organization, department, profile_id,"
                  " validity_days, code_hash, enabled, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int64(st, 1, r->endpoint_id);
    sqlite3_bind_text(st, 2, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->organization, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->department, -1, SQLITE_STATIC);
    if (r->profile_id > 0)
        sqlite3_bind_int64(st, 5, r->profile_id);
    sqlite3_bind_int(st, 6, r->validity_days);
    sqlite3_bind_blob(st, 7, r->code_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, r->enabled);
    sqlite3_bind_int64(st, 9, (int64_t)time(NULL));
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

/* One row of a query with an int64 and/or text or blob key. */
static int
account_first(void *arg, sqlite3_stmt *st)
{
    account_from_row(st, arg);
    return 1;
}

/* The one account a query finds (SCEP_E_NO_ENTRY when none). */
static enum scep_err
account_query(struct scep_store *s, const char *sql, const struct qarg *q, int nq,
              struct scep_account_row *out)
{
    enum scep_err rc;

    memset(out, 0, sizeof(*out));
    if ((rc = each_row(s, sql, q, nq, account_first, out)) != SCEP_OK)
        return rc;
    return out->id != 0 ? SCEP_OK : SCEP_E_NO_ENTRY;
}

enum scep_err
scep_store_find_account(struct scep_store *s, const unsigned char code_hash[32],
                        struct scep_account_row *out)
{
    struct qarg q[] = {{.b = code_hash, .blen = 32}};

    return account_query(s, "SELECT " ACCOUNT_COLS " FROM account WHERE code_hash = ?", q, 1, out);
}

enum scep_err
scep_store_get_account(struct scep_store *s, int64_t endpoint_id, const char *name,
                       struct scep_account_row *out)
{
    struct qarg q[] = {{.i = endpoint_id}, {.t = name}};

    return account_query(
        s, "SELECT " ACCOUNT_COLS " FROM account WHERE endpoint_id = ? AND name = ?", q, 2, out);
}

enum scep_err
scep_store_set_account(struct scep_store *s, int64_t id, int enabled,
                       const unsigned char *code_hash)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "UPDATE account SET enabled = ?, code_hash = coalesce(?, code_hash) WHERE id = ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int(st, 1, enabled);
    if (code_hash != NULL)
        sqlite3_bind_blob(st, 2, code_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_NO_ENTRY;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

struct account_walk {
    scep_account_cb cb;
    void *arg;
};

static int
account_row(void *arg, sqlite3_stmt *st)
{
    struct account_walk *w = arg;
    struct scep_account_row a;

    account_from_row(st, &a);
    return w->cb(w->arg, &a) ? -1 : 0;
}

enum scep_err
scep_store_each_account(struct scep_store *s, int64_t endpoint_id, scep_account_cb cb, void *arg)
{
    struct account_walk w = {cb, arg};
    struct qarg q[] = {{.i = endpoint_id}};

    return each_row(s,
                    "SELECT " ACCOUNT_COLS " FROM account WHERE ?1 = 0 OR endpoint_id = ?1"
                    " ORDER BY endpoint_id, name",
                    q, 1, account_row, &w);
}

/* ---- one-time challenges and token nonces ---- */

#define CHALLENGE_COLS                                                                             \
    "id, endpoint_id, hash, subject, sans, device_id, sid, created_at, expires_at, used_at, "      \
    "serial"

static void
challenge_from_row(sqlite3_stmt *st, struct scep_challenge_row *c)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(st, 0);
    c->endpoint_id = sqlite3_column_int64(st, 1);
    if (sqlite3_column_bytes(st, 2) == 32)
        memcpy(c->hash, sqlite3_column_blob(st, 2), 32);
    col_text(st, 3, c->subject, sizeof(c->subject));
    col_text(st, 4, c->sans, sizeof(c->sans));
    col_text(st, 5, c->device_id, sizeof(c->device_id));
    col_text(st, 6, c->sid, sizeof(c->sid));
    c->created_at = sqlite3_column_int64(st, 7);
    c->expires_at = sqlite3_column_int64(st, 8);
    c->used_at = sqlite3_column_int64(st, 9);
    col_text(st, 10, c->serial, sizeof(c->serial));
}

enum scep_err
scep_store_add_challenge(struct scep_store *s, const struct scep_challenge_row *r,
                         int max_outstanding, int64_t *id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "SELECT count(*) FROM challenge WHERE endpoint_id = ? AND used_at IS NULL"
                  " AND expires_at > ?",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int64(st, 1, r->endpoint_id);
    sqlite3_bind_int64(st, 2, r->created_at);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = SCEP_E_STORE;
        goto out;
    }
    if (sqlite3_column_int64(st, 0) >= max_outstanding) {
        rc = SCEP_E_CHALLENGE_CAP;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((x = prep(db,
                  "INSERT INTO challenge(endpoint_id, hash, subject, sans, device_id, sid,"
                  " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int64(st, 1, r->endpoint_id);
    sqlite3_bind_blob(st, 2, r->hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->sans, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, r->created_at);
    sqlite3_bind_int64(st, 8, r->expires_at);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK)
        *id = sqlite3_last_insert_rowid(db);
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

static int
challenge_first(void *arg, sqlite3_stmt *st)
{
    challenge_from_row(st, arg);
    return 1;
}

enum scep_err
scep_store_find_challenge(struct scep_store *s, int64_t endpoint_id, const unsigned char hash[32],
                          struct scep_challenge_row *out)
{
    struct qarg q[] = {{.b = hash, .blen = 32}, {.i = endpoint_id}};
    enum scep_err rc;

    memset(out, 0, sizeof(*out));
    rc = each_row(s, "SELECT " CHALLENGE_COLS " FROM challenge WHERE hash = ? AND endpoint_id = ?",
                  q, 2, challenge_first, out);
    if (rc != SCEP_OK)
        return rc;
    return out->id != 0 ? SCEP_OK : SCEP_E_NO_ENTRY;
}

struct challenge_walk {
    scep_challenge_cb cb;
    void *arg;
};

static int
challenge_row(void *arg, sqlite3_stmt *st)
{
    struct challenge_walk *w = arg;
    struct scep_challenge_row c;

    challenge_from_row(st, &c);
    return w->cb(w->arg, &c) ? -1 : 0;
}

enum scep_err
scep_store_each_challenge(struct scep_store *s, int64_t endpoint_id, scep_challenge_cb cb,
                          void *arg)
{
    struct challenge_walk w = {cb, arg};
    struct qarg q[] = {{.i = endpoint_id}};

    return each_row(s,
                    "SELECT " CHALLENGE_COLS " FROM challenge WHERE ?1 = 0 OR endpoint_id = ?1"
                    " ORDER BY id DESC LIMIT 1000",
                    q, 1, challenge_row, &w);
}

enum scep_err
scep_store_nonce_used(struct scep_store *s, int64_t endpoint_id, const char *nonce, int *used)
{
    struct qarg q[] = {{.i = endpoint_id}, {.t = nonce}};
    int64_t n = 0;
    enum scep_err rc;

    rc = each_row(s, "SELECT count(*) FROM token_nonce WHERE endpoint_id = ? AND nonce = ?", q, 2,
                  first_int, &n);
    *used = rc == SCEP_OK && n > 0;
    return rc;
}

/* ---- outbox and audit ---- */

/* Copy src into the pool at *at, return the copy (or NULL for NULL). */
static const char *
pool_copy(char **at, const char *src)
{
    size_t n;
    char *d = *at;

    if (src == NULL)
        return NULL;
    n = strlen(src) + 1;
    memcpy(d, src, n);
    *at = d + n;
    return d;
}

enum scep_err
scep_store_record_refusal(struct scep_store *s, int64_t endpoint_id, const char *endpoint,
                          const char *object, const char *actor, const char *reason,
                          const char *event_json, int event_pending)
{
    /* one allocation the writer frees: the job, its extra and copies of the strings */
    struct refusal {
        struct scep_commit job; /* first: the writer frees the job pointer */
        struct scep_commit_extra x;
        char pool[];
    } * rf;
    const char *strs[] = {endpoint, object, actor, reason, event_json};
    size_t need = 0, i;
    char *at;
    enum scep_err rc;

    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        need += strs[i] != NULL ? strlen(strs[i]) + 1 : 0;
    if ((rf = calloc(1, sizeof(*rf) + need)) == NULL)
        return SCEP_E_NOMEM;
    at = rf->pool;
    rf->x.endpoint_name = pool_copy(&at, endpoint);
    rf->x.object = pool_copy(&at, object);
    rf->x.audit_actor = pool_copy(&at, actor);
    rf->x.audit_reason = pool_copy(&at, reason);
    rf->x.event_json = pool_copy(&at, event_json);
    rf->x.event_pending = event_pending;
    rf->x.event_kind = "failure";
    rf->x.audit_action = "refuse";
    rf->x.audit_outcome = "refused";
    rf->job.extra = &rf->x;
    rf->job.detached = 1;
    rf->job.endpoint_id = endpoint_id;
    if ((rc = enqueue(s, &rf->job)) != SCEP_OK)
        free(rf);
    return rc;
}

enum scep_err
scep_store_audit(struct scep_store *s, const char *actor, const char *action, const char *object,
                 const char *endpoint, const char *outcome, const char *reason)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "INSERT INTO audit(at, actor, action, object, endpoint, outcome, reason)"
                  " VALUES (?,?,?,?,?,?,?)",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
    sqlite3_bind_text(st, 2, actor ? actor : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, action ? action : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, object ? object : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, endpoint ? endpoint : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, outcome ? outcome : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, reason ? reason : "", -1, SQLITE_STATIC);
    rc = map_rc(sqlite3_step(st));
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

struct audit_walk {
    scep_audit_cb cb;
    void *arg;
};

static int
audit_row(void *arg, sqlite3_stmt *st)
{
    struct audit_walk *w = arg;
    struct scep_audit_row a;

    a.id = sqlite3_column_int64(st, 0);
    a.at = sqlite3_column_int64(st, 1);
    a.actor = (const char *)sqlite3_column_text(st, 2);
    a.action = (const char *)sqlite3_column_text(st, 3);
    a.object = (const char *)sqlite3_column_text(st, 4);
    a.endpoint = (const char *)sqlite3_column_text(st, 5);
    a.outcome = (const char *)sqlite3_column_text(st, 6);
    a.reason = (const char *)sqlite3_column_text(st, 7);
    return w->cb(w->arg, &a) ? -1 : 0;
}

enum scep_err
scep_store_each_audit(struct scep_store *s, int limit, scep_audit_cb cb, void *arg)
{
    struct audit_walk w = {cb, arg};
    struct qarg q[] = {{.i = limit > 0 ? limit : 1000}};

    return each_row(s,
                    "SELECT id, at, actor, action, object, endpoint, outcome, reason FROM audit"
                    " ORDER BY id DESC LIMIT ?",
                    q, 1, audit_row, &w);
}

struct event_walk {
    scep_event_cb cb;
    void *arg;
};

static int
event_row(void *arg, sqlite3_stmt *st)
{
    struct event_walk *w = arg;
    struct scep_event_row e;

    e.id = sqlite3_column_int64(st, 0);
    e.created_at = sqlite3_column_int64(st, 1);
    e.endpoint_id = sqlite3_column_int64(st, 2);
    e.kind = (const char *)sqlite3_column_text(st, 3);
    e.payload = (const char *)sqlite3_column_text(st, 4);
    e.status = (const char *)sqlite3_column_text(st, 5);
    e.attempts = sqlite3_column_int(st, 6);
    e.next_attempt_at = sqlite3_column_int64(st, 7);
    e.delivered_at = sqlite3_column_int64(st, 8);
    e.last_error = (const char *)sqlite3_column_text(st, 9);
    return w->cb(w->arg, &e) ? -1 : 0;
}

/* Events by sql with ?1 status (or NULL), ?2 now, ?3 limit. */
static enum scep_err
each_event_sql(struct scep_store *s, const char *sql, const char *status, int64_t now, int limit,
               scep_event_cb cb, void *arg)
{
    struct event_walk w = {cb, arg};
    struct qarg q[] = {
        {.t = status, .null = status == NULL}, {.i = now}, {.i = limit > 0 ? limit : 1000}};

    return each_row(s, sql, q, 3, event_row, &w);
}

#define EVENT_COLS                                                                                 \
    "id, created_at, endpoint_id, kind, payload, status, attempts, next_attempt_at,"               \
    " delivered_at, last_error"

enum scep_err
scep_store_each_event(struct scep_store *s, const char *status, int limit, scep_event_cb cb,
                      void *arg)
{
    return each_event_sql(s,
                          "SELECT " EVENT_COLS " FROM outbox WHERE (?1 IS NULL OR status = ?1)"
                          " AND ?2 >= 0 ORDER BY id DESC LIMIT ?3",
                          status, 0, limit, cb, arg);
}

enum scep_err
scep_store_due_events(struct scep_store *s, int64_t now, int limit, scep_event_cb cb, void *arg)
{
    return each_event_sql(s,
                          "SELECT " EVENT_COLS " FROM outbox WHERE status = 'pending'"
                          " AND (?1 IS NULL) AND next_attempt_at <= ?2 ORDER BY id LIMIT ?3",
                          NULL, now, limit, cb, arg);
}

enum scep_err
scep_store_event_result(struct scep_store *s, int64_t id, int ok, int64_t next_at,
                        const char *error)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    enum scep_err rc;
    int x;

    if ((rc = begin_write(s, &db)) != SCEP_OK)
        return rc;
    if ((x = prep(db,
                  "UPDATE outbox SET attempts = attempts + 1,"
                  " status = CASE WHEN ?1 THEN 'delivered' WHEN ?2 = 0 THEN 'dead' ELSE status END,"
                  " delivered_at = CASE WHEN ?1 THEN ?3 ELSE NULL END,"
                  " next_attempt_at = CASE WHEN ?2 > 0 THEN ?2 ELSE next_attempt_at END,"
                  " last_error = ?4 WHERE id = ?5 AND status = 'pending'",
                  &st)) != SQLITE_OK) {
        rc = map_rc(x);
        goto out;
    }
    sqlite3_bind_int(st, 1, ok ? 1 : 0);
    sqlite3_bind_int64(st, 2, next_at);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    if (!ok && error != NULL)
        sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, id);
    if ((rc = map_rc(sqlite3_step(st))) == SCEP_OK && sqlite3_changes(db) != 1)
        rc = SCEP_E_NO_ENTRY;
out:
    sqlite3_finalize(st);
    return end_write(s, db, rc);
}

/*
 * Housekeeping deletes at most PRUNE_CHUNK rows per write transaction, so
 * the group commit never waits long for the lock (a day of a large
 * rollout ages out at once), and at most PRUNE_MAX_CHUNKS per call; the
 * rest goes at the next call.  Each statement reaches its rows through an
 * index on their age (schema 7; test_store_prune_uses_indexes).
 */
#define PRUNE_CHUNK 500
#define PRUNE_MAX_CHUNKS 200

static const char *const prune_sql[] = {
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox INDEXED BY outbox_created"
    " WHERE created_at < ?1 AND status IN ('delivered','dead','local') LIMIT ?3)",
    "DELETE FROM challenge WHERE id IN (SELECT id FROM challenge INDEXED BY challenge_used"
    " WHERE used_at IS NOT NULL AND used_at < ?1 LIMIT ?3)",
    "DELETE FROM challenge WHERE id IN (SELECT id FROM challenge INDEXED BY challenge_expires"
    " WHERE expires_at < ?1 LIMIT ?3)",
    "DELETE FROM token_nonce WHERE rowid IN (SELECT rowid FROM token_nonce"
    " INDEXED BY token_nonce_expires WHERE expires_at < ?2 LIMIT ?3)",
};

const char *
scep_store_prune_sql(size_t i)
{
    return i < sizeof(prune_sql) / sizeof(prune_sql[0]) ? prune_sql[i] : NULL;
}

enum scep_err
scep_store_prune(struct scep_store *s, int64_t now, int64_t keep_seconds, int64_t *deleted)
{
    enum scep_err rc = SCEP_OK;
    int64_t n = 0;
    size_t i;
    int chunks = 0;

    if (deleted != NULL)
        *deleted = 0;
    for (i = 0; i < sizeof(prune_sql) / sizeof(prune_sql[0]) && rc == SCEP_OK; i++) {
        int changed;
        do {
            sqlite3 *db = NULL;
            sqlite3_stmt *st = NULL;
            int r;
            changed = 0;
            if ((rc = begin_write(s, &db)) != SCEP_OK)
                break;
            if ((r = prep(db, prune_sql[i], &st)) == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, now - keep_seconds);
                sqlite3_bind_int64(st, 2, now);
                sqlite3_bind_int64(st, 3, PRUNE_CHUNK);
                r = sqlite3_step(st);
            }
            if (r != SQLITE_DONE) {
                log_sqlite(db, "prune", r);
                rc = map_rc(r);
            } else {
                changed = sqlite3_changes(db);
            }
            sqlite3_finalize(st);
            if ((rc = end_write(s, db, rc)) == SCEP_OK)
                n += changed;
        } while (rc == SCEP_OK && changed == PRUNE_CHUNK && ++chunks < PRUNE_MAX_CHUNKS);
    }
    if (deleted != NULL)
        *deleted = n;
    return rc;
}
