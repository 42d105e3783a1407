#!/usr/bin/env python3
"""intune_stub.py - a stand-in for the Microsoft services a third-party SCEP
CA talks to when it validates Intune requests (the contract of Microsoft's
Intune-Resource-Access CsrValidation libraries, src/CsrValidation/{csharp,java}):

  POST /{tenant}/oauth2/token            AAD v1 client-credentials grant
       (/{tenant}/oauth2/v2.0/token      with scope=<resource>/.default)
  GET  /v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-000000000000/endpoints
       Microsoft Graph service discovery ({"value": [{"providerName", "uri"}]})
  GET  /{tenant}/servicePrincipalsByAppId/{appId}/serviceEndpoints?api-version=1.6
       the older AAD Graph form ({"value": [{"serviceName", "uri"}]})
  POST {service}/ScepActions/validateRequest | successNotification | failureNotification
       headers Authorization: Bearer <Intune token>, api-version: 2018-02-20,
       client-request-id: <GUID>; answer {"code": ..., "errorDescription": ...}

Python 3 standard library only (the `cryptography` module is used to read
the CSR subject when present, else a minimal DER walk).  For tests: listens
on 127.0.0.1; --port 0 prints "PORT <n>".
"""
import argparse
import base64
import binascii
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTUNE_APP_ID = "0000000a-0000-0000-c000-000000000000"
SERVICE_NAME = "ScepRequestValidationFEService"
SERVICE_PATH = "/TrafficGateway/TrafficRoutingService/" + SERVICE_NAME + "/StatelessScepRequestValidationService"
API_VERSION = "2018-02-20"
INTUNE_RESOURCE = "https://api.manage.microsoft.com/"
GRAPH_RESOURCE = "https://graph.microsoft.com/"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# IntuneScepServiceException.ErrorCode of the libraries: the codes the
# service answers.
ERROR_CODES = [
    "Success", "CertificateRequestDecodingFailed", "ChallengePasswordMissing",
    "ChallengeDeserializationError", "ChallengeDecryptionError", "ChallengeDecodingError",
    "ChallengeInvalidTimestamp", "ChallengeExpired", "SubjectNameMissing", "SubjectNameMismatch",
    "SubjectAltNameMissing", "SubjectAltNameMismatch", "KeyUsageMismatch", "KeyLengthMismatch",
    "EnhancedKeyUsageMissing", "EnhancedKeyUsageMismatch", "AadKeyIdentifierListMissing",
    "RegisteredKeyMismatch", "SigningCertThumbprintMismatch",
    "ScepProfileNoLongerTargetedToTheClient", "SignatureValidationFailed",
    "BadCertificateRequestIdInChallenge", "BadDeviceIdInChallenge", "BadUserIdInChallenge",
]


def csr_common_name(der):
    """(parsed, CN) of a DER PKCS#10: parsed is False when der is not one."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError:
        return _der_walk_cn(der)
    try:
        csr = x509.load_der_x509_csr(der)
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except Exception:
        return False, None
    return True, (cns[0].value if cns else None)


def _der_tlv(b, i):
    """(tag, value start, value end) of the TLV at i."""
    tag = b[i]
    n = b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise ValueError("length")
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    if i + n > len(b):
        raise ValueError("truncated")
    return tag, i, i + n


def _der_walk_cn(der):
    # CertificationRequest ::= SEQ { CertificationRequestInfo SEQ { version, subject Name, ... } }
    try:
        _, s, _ = _der_tlv(der, 0)
        _, s, _ = _der_tlv(der, s)          # CertificationRequestInfo
        _, _, e = _der_tlv(der, s)          # version
        tag, s, end = _der_tlv(der, e)      # subject: SEQUENCE OF RDN
        if tag != 0x30:
            return False, None
        while s < end:
            _, rs, re_ = _der_tlv(der, s)   # RDN (SET)
            s = re_
            while rs < re_:
                _, as_, ae = _der_tlv(der, rs)  # AttributeTypeAndValue
                rs = ae
                otag, os_, oe = _der_tlv(der, as_)
                if otag == 0x06 and der[os_:oe] == b"\x55\x04\x03":
                    _, vs, ve = _der_tlv(der, oe)
                    return True, der[vs:ve].decode("utf-8", "replace")
    except (ValueError, IndexError):
        return False, None
    return True, None


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # access token -> "graph" | "intune"
        self.intune_tokens_issued = 0
        self.rejected = set()


class Handler(BaseHTTPRequestHandler):
    server_version = "intune-stub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # quiet: the test reads the record file
        pass

    # -- plumbing -------------------------------------------------------
    @property
    def st(self):
        return self.server.state

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, obj=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(obj).encode() if obj is not None else b"")
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, entry):
        if not self.st.args.record:
            return
        with self.st.lock, open(self.st.args.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()

    def _bearer(self):
        h = self.headers.get("Authorization") or ""
        if not h.startswith("Bearer "):
            return None, None
        tok = h[len("Bearer "):]
        with self.st.lock:
            return tok, self.st.tokens.get(tok)

    def _base(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    # -- AAD --------------------------------------------------------------
    def _aad_error(self, status, error, code, text):
        now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        self._send(status, {
            "error": error,
            "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
            % (code, text, uuid.uuid4(), uuid.uuid4(), now),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        })

    def _resource_kind(self, resource):
        graph = {GRAPH_RESOURCE, self._base() + "/"}
        if resource in graph:
            return "graph"
        if resource == self.st.args.intune_resource:
            return "intune"
        return None

    def do_token(self, tenant, v2):
        a = self.st.args
        raw = self._body()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items()}
        resource = form.get("resource")
        if v2 and form.get("scope"):
            resource = form["scope"]
            if resource.endswith(".default"):
                resource = resource[: -len(".default")]
            resource = resource.rstrip("/") + "/"
        entry = {
            "kind": "token", "method": "POST", "path": self.path, "tenant": tenant,
            "headers": {"content-type": self.headers.get("Content-Type"),
                        "client-request-id": self.headers.get("client-request-id")},
            "body": {"grant_type": form.get("grant_type"), "client_id": form.get("client_id"),
                     "resource": resource,
                     "client_secret_ok": form.get("client_secret") == a.app_key},
        }
        self._record(entry)
        if a.tenant and tenant.lower() != a.tenant.lower():
            return self._aad_error(400, "invalid_request", 90002,
                                   "Tenant '%s' not found." % tenant)
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        if form.get("client_id") != a.app_id:
            return self._aad_error(400, "unauthorized_client", 700016,
                                   "Application with identifier '%s' was not found in the directory."
                                   % form.get("client_id"))
        if form.get("client_secret") != a.app_key:
            return self._aad_error(401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent "
                                   "in the request is the client secret value, not the client "
                                   "secret ID.")
        kind = self._resource_kind(resource)
        if kind is None:
            return self._aad_error(400, "invalid_resource", 500011,
                                   "The resource principal named %s was not found in the tenant."
                                   % resource)
        tok = "stub." + kind + "." + secrets.token_urlsafe(24)
        with self.st.lock:
            self.st.tokens[tok] = kind
            if kind == "intune":
                self.st.intune_tokens_issued += 1
                if a.reject_first_token and self.st.intune_tokens_issued == 1:
                    self.st.rejected.add(tok)
        now = int(time.time())
        life = a.token_lifetime
        if v2:
            ans = {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                   "access_token": tok}
        else:  # the v1 endpoint sends its numbers as strings
            ans = {"token_type": "Bearer", "expires_in": str(life), "ext_expires_in": str(life),
                   "expires_on": str(now + life), "not_before": str(now), "resource": resource,
                   "access_token": tok}
        self._send(200, ans)

    # -- Graph ------------------------------------------------------------
    def _endpoints(self, legacy):
        base = self._base()
        items = [
            ("ScepRequestValidationFEService", base + SERVICE_PATH),
            ("PkiConnectorFEService", base + "/TrafficGateway/TrafficRoutingService/PkiConnectorFEService"),
            ("AndroidEnrollment", base + "/StatelessEnrollmentService/DeviceEnrollment.svc"),
        ]
        out = []
        for name, uri in items:
            if legacy:
                out.append({"serviceName": name, "uri": uri})
            else:
                out.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)), "deletedDateTime": None,
                            "capability": name, "providerId": INTUNE_APP_ID,
                            "providerName": name, "providerResourceId": None, "uri": uri})
        return out

    def do_discovery(self, legacy):
        tok, kind = self._bearer()
        self._record({"kind": "discovery", "method": "GET", "path": self.path,
                      "headers": {"authorization": kind or ("bad" if tok else None),
                                  "client-request-id": self.headers.get("client-request-id")}})
        if kind != "graph":
            return self._send(401, {"error": {
                "code": "InvalidAuthenticationToken",
                "message": "Access token validation failure. Invalid audience.",
                "innerError": {"request-id": str(uuid.uuid4()),
                               "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}}})
        ans = {"value": self._endpoints(legacy)}
        if not legacy:
            ans = {"@odata.context": self._base() + "/v1.0/$metadata#servicePrincipals('appId%3D"
                   + INTUNE_APP_ID + "')/endpoints", **ans}
        self._send(200, ans)

    # -- Intune ScepActions ----------------------------------------------
    def do_action(self, op):
        a = self.st.args
        raw = self._body()
        tok, kind = self._bearer()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        hdr = {
            "authorization": kind or ("bad" if tok else None),
            "api-version": self.headers.get("api-version"),
            "client-request-id": self.headers.get("client-request-id"),
            "content-type": self.headers.get("Content-Type"),
            "useragent": self.headers.get("UserAgent"),
        }
        self._record({"kind": "action", "op": op, "method": "POST", "path": self.path,
                      "headers": hdr, "body": body})
        with self.st.lock:
            rejected = tok in self.st.rejected
        if kind != "intune" or rejected:
            return self._send(401, raw=b"", headers={
                "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                                    'common/oauth2/authorize", error="invalid_token"'})
        if hdr["api-version"] != API_VERSION:
            return self._send(400, {"Message": "api-version header missing or not supported"})
        if not GUID_RE.match(hdr["client-request-id"] or ""):
            return self._send(400, {"Message": "client-request-id must be a GUID"})
        if not isinstance(body, dict):
            return self._send(400, {"Message": "body is not a JSON object"})

        def answer(code, desc=""):
            self._send(200, {"code": code, "errorDescription": desc})

        if op == "validateRequest":
            if a.slow:
                time.sleep(a.slow)
            req = body.get("request")
            if not isinstance(req, dict) or not all(
                    isinstance(req.get(k), str) and req.get(k) for k in
                    ("transactionId", "certificateRequest", "callerInfo")):
                return self._send(400, {"Message": "request.transactionId, certificateRequest "
                                                   "and callerInfo are required"})
            try:
                der = base64.b64decode(req["certificateRequest"], validate=True)
            except (binascii.Error, ValueError):
                der = b""
            parsed, cn = csr_common_name(der) if der else (False, None)
            if not parsed:
                return answer("CertificateRequestDecodingFailed",
                              "The certificate request could not be decoded.")
            if cn is not None and cn in (a.deny_cn or []):
                return answer(a.deny_code, "The subject name '%s' in the certificate request does "
                                           "not match the one in the challenge." % cn)
            return answer("Success")
        notif = body.get("notification")
        if not isinstance(notif, dict):
            return self._send(400, {"Message": "notification is required"})
        if op == "successNotification":
            need = ("transactionId", "certificateRequest", "certificateThumbprint",
                    "certificateSerialNumber", "certificateExpirationDateUtc",
                    "issuingCertificateAuthority", "callerInfo")
            missing = [k for k in need if not (isinstance(notif.get(k), str) and notif.get(k))]
            if missing:
                return self._send(400, {"Message": "missing: " + ",".join(missing)})
            if a.fail_success:
                return answer(a.fail_code, "The SCEP profile is no longer targeted to the client.")
            return answer("Success")
        # failureNotification
        if not isinstance(notif.get("hResult"), int) or isinstance(notif.get("hResult"), bool):
            return self._send(400, {"Message": "hResult must be a number"})
        desc = notif.get("errorDescription")
        if not isinstance(desc, str) or not desc:
            return self._send(400, {"Message": "errorDescription is required"})
        if len(desc) > 255:  # the libraries document "Max length = 255 chars"
            return self._send(400, {"Message": "errorDescription longer than 255 characters"})
        return answer("Success")

    # -- routing ------------------------------------------------------------
    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        m = re.match(r"^/([^/]+)/oauth2/(v2\.0/)?token$", path)
        if m:
            return self.do_token(m.group(1), bool(m.group(2)))
        m = re.match(r"^" + re.escape(SERVICE_PATH) + r"/ScepActions/(validateRequest|"
                     r"successNotification|failureNotification)$", path)
        if m:
            return self.do_action(m.group(1))
        self._body()
        self._record({"kind": "unknown", "method": "POST", "path": self.path})
        self._send(404, {"error": {"code": "NotFound", "message": "no such path"}})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/v1.0/servicePrincipals/appId=%s/endpoints" % INTUNE_APP_ID:
            return self.do_discovery(False)
        m = re.match(r"^/([^/]+)/servicePrincipalsByAppId/%s/serviceEndpoints$" % INTUNE_APP_ID,
                     u.path)
        if m and urllib.parse.parse_qs(u.query).get("api-version") == ["1.6"]:
            return self.do_discovery(True)
        self._record({"kind": "unknown", "method": "GET", "path": self.path})
        self._send(404, {"error": {"code": "Request_ResourceNotFound",
                                   "message": "Resource not found."}})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--app-id", required=True)
    p.add_argument("--app-key", required=True)
    p.add_argument("--tenant", default=None, help="when set, other tenants are refused")
    p.add_argument("--intune-resource", default=INTUNE_RESOURCE)
    p.add_argument("--deny-cn", action="append", default=[],
                   help="validateRequest refuses a CSR with this subject CN (repeatable)")
    p.add_argument("--deny-code", default="SubjectNameMismatch", choices=ERROR_CODES[1:])
    p.add_argument("--fail-success", action="store_true",
                   help="successNotification answers an error code")
    p.add_argument("--fail-code", default="ScepProfileNoLongerTargetedToTheClient",
                   choices=ERROR_CODES[1:])
    p.add_argument("--slow", type=float, default=0.0, help="seconds validateRequest waits")
    p.add_argument("--token-lifetime", type=int, default=3599)
    p.add_argument("--reject-first-token", action="store_true",
                   help="the first Intune token issued is refused with 401 (a revoked token)")
    p.add_argument("--record", default=None, help="append one JSON line per request")
    args = p.parse_args()

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
