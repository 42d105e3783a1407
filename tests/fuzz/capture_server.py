#!/usr/bin/env python3
"""capture_server.py - a fake SCEP server that records what real clients send,
for the fuzz seed corpus (see capture_seeds.sh).

    capture_server.py PORT RA_CERT_PEM OUTDIR [--get-only]

Answers GetCACaps (with POSTPKIOperation unless --get-only, so clients fall
back to GET) and GetCACert (the DER of RA_CERT_PEM, application/x-x509-ca-cert),
so the client encrypts its request to the fuzz RA key.  Every PKIOperation is
saved: OUTDIR/msg-N.der (the pkiMessage; GET message= decoded the way scepd
decodes it) and, for GET, OUTDIR/query-N.txt (the raw query string).  The
reply is HTTP 500: no CertRep is ever built, the client gives up.

Test tool only; it trusts nothing it is sent but also checks nothing.
"""
import base64
import http.server
import os
import ssl
import sys
import urllib.parse

port, ra_pem, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
get_only = "--get-only" in sys.argv[4:]
with open(ra_pem) as f:
    ra_der = ssl.PEM_cert_to_DER_cert(f.read())
count = [0]


def decode_message(raw):
    s = urllib.parse.unquote(raw)  # %XX only; '+' kept as '+'
    s = s.replace("\r", "").replace("\n", "").replace("\t", "").replace(" ", "+")
    s = s.replace("-", "+").replace("_", "/").rstrip("=")
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s)


class Handler(http.server.BaseHTTPRequestHandler):
    def _reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _save(self, der, query):
        count[0] += 1
        n = count[0]
        with open(os.path.join(outdir, "msg-%d.der" % n), "wb") as f:
            f.write(der)
        if query is not None:
            with open(os.path.join(outdir, "query-%d.txt" % n), "w") as f:
                f.write(query)

    def do_GET(self):
        query = urllib.parse.urlsplit(self.path).query
        parts = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        op = parts.get("operation", "")
        if op == "GetCACaps":
            # SHA-384 too: strongSwan 5.9.8 tests its capability bits with
            # the enum index as a mask and needs SHA-384 to send AES (see
            # tests/interop/test_strongswan.sh).
            # SCEPStandard implies POSTPKIOperation (RFC 8894 §3.5.2).
            caps = "SHA-1\nSHA-256\nSHA-384\nSHA-512\nAES\nDES3\nRenewal\n"
            if not get_only:
                caps = "POSTPKIOperation\nSCEPStandard\n" + caps
            self._reply(200, "text/plain", caps.encode())
        elif op == "GetCACert":
            self._reply(200, "application/x-x509-ca-cert", ra_der)
        elif op == "PKIOperation" and "message" in parts:
            self._save(decode_message(parts["message"]), query)
            self._reply(500, "text/plain", b"capture only\n")
        else:
            self._reply(400, "text/plain", b"bad request\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._save(body, None)
        self._reply(500, "text/plain", b"capture only\n")

    def log_message(self, fmt, *args):
        sys.stderr.write("capture: " + (fmt % args) + "\n")


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
