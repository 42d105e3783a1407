#!/usr/bin/env python3
"""Capture proxy for golden messages: forwards every request to a scepd and
saves each PKIOperation message (POST body, or GET message= decoded the way
scepd decodes it) as OUTDIR/<prefix>-<n>-<method>.der.

    capture_proxy.py LISTEN_PORT UPSTREAM_URL OUTDIR PREFIX

Used by tests/data/make_golden.sh; not part of any test run.
"""
import base64
import http.server
import os
import sys
import urllib.parse
import urllib.request

port, upstream, outdir, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
count = [0]


def decode_message(raw):
    s = urllib.parse.unquote(raw)  # %XX only; '+' kept
    s = s.replace("\r", "").replace("\n", "").replace(" ", "+")
    s = s.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    return base64.b64decode(s)


class Proxy(http.server.BaseHTTPRequestHandler):
    def _forward(self, body):
        url = upstream.rstrip("/") + self.path[self.path.index("/scep") + 5:] if "/scep" in self.path else upstream
        req = urllib.request.Request(url, data=body, method=self.command)
        for h in ("Content-Type",):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req) as r:
                data, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            data, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _save(self, der, method):
        count[0] += 1
        with open(os.path.join(outdir, "%s-%d-%s.der" % (prefix, count[0], method)), "wb") as f:
            f.write(der)

    def do_GET(self):
        q = urllib.parse.urlsplit(self.path).query
        parts = dict(p.split("=", 1) for p in q.split("&") if "=" in p)
        if parts.get("operation") == "PKIOperation" and "message" in parts:
            self._save(decode_message(parts["message"]), "get")
        self._forward(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self._save(body, "post")
        self._forward(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
