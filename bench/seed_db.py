#!/usr/bin/env python3
"""Seed a scepd database with N synthetic issued certificates and what an
issuance writes with each (its request row, its event in the outbox,
settled "local", and its audit row), the size real ones have, to measure
issuance with a large database.  The server must be stopped.  Rows are marked with txid "seed-*"
and are not valid certificates: use a throwaway data directory.

    bench/seed_db.py DATA_DIR N
"""
import os
import sqlite3
import sys
import time

data, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(os.path.join(data, "scepd.db"))
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")  # seeding only; scepd itself runs with FULL
ca_id, ep_id = db.execute("SELECT ca_id, id FROM endpoint ORDER BY id LIMIT 1").fetchone()
now = int(time.time())
batch = 20000
t0 = time.time()
for start in range(0, n, batch):
    reqs, certs, events, audits = [], [], [], []
    for i in range(start, min(n, start + batch)):
        serial = bytearray(os.urandom(16))
        serial[0] = (serial[0] & 0x7F) | 0x40
        serial = serial.hex()
        txid = b"seed-%d" % i
        reqs.append((ep_id, txid, os.urandom(32), os.urandom(32), os.urandom(900), 19, "issued",
                     serial, now, now))
        certs.append((serial, ca_id, ep_id, "CN=seed-%d,O=scepd bench" % i, "",
                      os.urandom(20).hex(), os.urandom(32).hex(), now - 3600, now + 86400 * 365,
                      os.urandom(1100), "valid", txid, now))
        # an event as scepd writes it (kept 30 days), about 1.2 KB of JSON
        events.append((now, ep_id, "success", '{"event":"success","serial":"%s","pad":"%s"}'
                       % (serial, os.urandom(540).hex()), "local", now))
        audits.append((now, "static", "issue", serial, "default", "ok", ""))
    with db:
        db.executemany("INSERT INTO request(endpoint_id, txid, key_hash, csr_hash, csr_der, msgtype,"
                       " status, serial, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)", reqs)
        db.executemany("INSERT INTO certificate(serial, ca_id, endpoint_id, subject, sans, sha1,"
                       " sha256, not_before, not_after, der, status, txid, created_at)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", certs)
        db.executemany("INSERT INTO outbox(created_at, endpoint_id, kind, payload, status,"
                       " next_attempt_at) VALUES (?,?,?,?,?,?)", events)
        db.executemany("INSERT INTO audit(at, actor, action, object, endpoint, outcome, reason)"
                       " VALUES (?,?,?,?,?,?,?)", audits)
    print("\rseeded %d/%d (%.0f rows/s)" % (min(n, start + batch), n,
                                             min(n, start + batch) / (time.time() - t0)),
          end="", file=sys.stderr)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print("", file=sys.stderr)
