#!/usr/bin/env python3
"""webhook_stub.py - a stand-in for a scepd validation webhook and event
receiver (the contract of include/scepd/webhook.h).

  POST <any path but /events>   validation: {"transactionId", "certificateRequest",
                                "endpoint", "challenge"}; answered by --mode
  POST /events                  event delivery: 200, or 500 for the first --fail-events N

Every request must carry a valid X-Scepd-Signature (t=<unix>,v1=<hex
HMAC-SHA256(key, "<t>." + body)>) when --key-file is given, and
Authorization: Bearer <--bearer> when --bearer is given; otherwise 401.

Modes: allow | deny | timeout (sleeps --sleep seconds, then would allow) |
garbage (200, not JSON) | status500 | allow-string ({"allow": "true"}) |
redirect (302 to an allowing URL) | huge (200, a 100 KiB JSON object) |
deny-cn:<CN> (deny when the CSR subject CN is <CN>, else allow).

Python 3 standard library only (`cryptography` reads the CSR when present).
Listens on 127.0.0.1; --port 0 prints "PORT <n>".
"""
import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from intune_stub import csr_common_name  # noqa: E402  (same directory)

SIG_TOLERANCE_S = 300


def load_key(path):
    data = open(path, "rb").read()
    text = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F]+", text or b"x") and len(text) % 2 == 0:
        return binascii.unhexlify(text)
    return data


def check_signature(key, header, body):
    """(ok, why) for an X-Scepd-Signature header value."""
    if not header:
        return False, "no signature"
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = parts.get("t"), parts.get("v1")
    if t is None or v1 is None or not t.isdigit():
        return False, "malformed signature"
    want = hmac.new(key, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, v1):
        return False, "signature mismatch"
    if abs(time.time() - int(t)) > SIG_TOLERANCE_S:
        return False, "stale timestamp"
    return True, "ok"


class Handler(BaseHTTPRequestHandler):
    server_version = "webhook-stub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def _send(self, status, obj=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if obj is not None else "text/plain")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout mode)

    def _record(self, entry):
        st = self.server.state
        if not st.args.record:
            return
        with st.lock, open(st.args.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()

    def do_POST(self):
        st = self.server.state
        a = st.args
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        sig = self.headers.get("X-Scepd-Signature")
        auth = self.headers.get("Authorization")
        sig_ok, sig_why = (check_signature(st.key, sig, raw) if st.key is not None
                           else (True, "no key configured"))
        bearer_ok = a.bearer is None or auth == "Bearer " + a.bearer
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        path = self.path.split("?", 1)[0]
        entry = {"path": path, "headers": {"content-type": self.headers.get("Content-Type"),
                                           "x-scepd-signature": sig,
                                           "authorization": "Bearer" if auth else None},
                 "raw_body": raw.decode("utf-8", "replace"), "body": body,
                 "sig_ok": sig_ok, "sig_why": sig_why, "bearer_ok": bearer_ok}
        self._record(entry)
        if not sig_ok or not bearer_ok:
            return self._send(401, {"error": "unauthorized"})

        if path == "/events":
            with st.lock:
                st.events += 1
                k = st.events
            return self._send(500 if k <= a.fail_events else 200, {"received": k})

        mode = a.mode
        if mode == "allow":
            return self._send(200, {"allow": True})
        if mode == "deny":
            return self._send(200, {"allow": False, "reason": "denied by stub"})
        if mode == "timeout":
            time.sleep(a.sleep)
            return self._send(200, {"allow": True})
        if mode == "garbage":
            return self._send(200, raw=b"<html>this is not JSON</html>")
        if mode == "status500":
            return self._send(500, {"allow": True})
        if mode == "allow-string":
            return self._send(200, {"allow": "true"})
        if mode == "redirect":
            return self._send(302, raw=b"", headers={"Location": "/allow"})
        if mode == "huge":
            return self._send(200, {"allow": True, "pad": "x" * (100 * 1024)})
        if mode.startswith("deny-cn:"):
            deny = mode[len("deny-cn:"):]
            cn = None
            if isinstance(body, dict) and isinstance(body.get("certificateRequest"), str):
                try:
                    _, cn = csr_common_name(base64.b64decode(body["certificateRequest"],
                                                             validate=True))
                except (binascii.Error, ValueError):
                    cn = None
            if cn is None:
                return self._send(200, {"allow": False, "reason": "no CN in the CSR"})
            if cn == deny:
                return self._send(200, {"allow": False, "reason": "CN %s is denied" % cn})
            return self._send(200, {"allow": True})
        return self._send(500, {"error": "unknown mode"})


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.events = 0
        self.key = load_key(args.key_file) if args.key_file else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--key-file", default=None, help="HMAC key, hex or raw bytes")
    p.add_argument("--bearer", default=None)
    p.add_argument("--record", default=None)
    p.add_argument("--mode", default="allow")
    p.add_argument("--sleep", type=float, default=5.0, help="seconds the timeout mode waits")
    p.add_argument("--fail-events", type=int, default=0)
    args = p.parse_args()
    modes = ("allow", "deny", "timeout", "garbage", "status500", "allow-string", "redirect", "huge")
    if args.mode not in modes and not args.mode.startswith("deny-cn:"):
        p.error("unknown --mode " + args.mode)

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
