"""Support for the auth black-box tests (tests/e2e/test_auth_*.py; the contract
is docs/auth.md): key material and JWKs, honest and hostile tokens, crypt(3)
password hashes, a JWKS / OpenID-discovery server and an RFC 7662
introspection server (small threaded http.server servers on 127.0.0.1, port
0), config builders and assertions on the gateway's auth answers.

Only stdlib, pytest, requests, PyJWT and cryptography.
"""

import base64
import functools
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
import warnings
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from conftest import assert_problem

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated since 3.11, still the only stdlib crypt(3)

ISSUER = "https://auth.example.com"
AUDIENCE = "links-api"
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"

# The identity headers the gateway owns (docs/auth.md, "What the service receives").
IDENTITY_HEADERS = ("X-Consumer", "X-Consumer-Tier", "X-User-ID", "X-User-Role",
                    "X-Auth-Verified", "X-Gateway-Signature", "X-Anonymous-Consumer")

# Exact challenges from the "Answers" table.
APIKEY_CHALLENGE = 'APIKey realm="gatehouse"'
BEARER_CHALLENGE = 'Bearer realm="gatehouse"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="gatehouse", error="invalid_token"'


def basic_challenge(realm):
    return f'Basic realm="{realm}", charset="UTF-8"'


def insufficient_scope_challenge(scopes):
    return f'Bearer realm="gatehouse", error="insufficient_scope", scope="{" ".join(scopes)}"'


# --------------------------------------------------------------------------
# base64url and hand-built tokens

def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def segment(part):
    """A dict -> its compact JSON; bytes/str taken as the exact JSON text."""
    if isinstance(part, dict):
        return b64url(json_bytes(part))
    return b64url(part)


def hand_token(header, payload, sign=None, signature=None):
    """A JWS compact token built by hand. `sign(signing_input_bytes) -> bytes`
    signs exactly what is sent; `signature` (bytes) is used as is."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if sign is not None:
        signature = sign(signing_input.encode())
    return f"{signing_input}.{b64url(signature or b'')}"


def hmac_signer(secret, alg="HS256"):
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    if isinstance(secret, str):
        secret = secret.encode()
    return lambda data: hmac.new(secret, data, digest).digest()


def resign(token_signing_input, key, alg):
    """Signs an arbitrary (possibly malformed) signing input with `key`
    (a SigningKey) and `alg`; returns the full token."""
    sig = key.sign_bytes(token_signing_input.encode(), alg)
    return f"{token_signing_input}.{b64url(sig)}"


# --------------------------------------------------------------------------
# keys

def _algorithm(alg):
    return jwt.algorithms.get_default_algorithms()[alg]


class SigningKey:
    """A private key with its kid; mints tokens and exports the public half."""

    def __init__(self, kind, kid, private):
        self.kind = kind  # "RSA", "EC-P256", "EC-P384", "Ed25519"
        self.kid = kid
        self.private = private

    def with_kid(self, kid):
        return SigningKey(self.kind, kid, self.private)

    @property
    def public(self):
        return self.private.public_key()

    def public_pem(self):
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwk(self, **extra):
        """The public JWK (kid, use: sig, no alg unless given in extra)."""
        if self.kind == "RSA":
            key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public))
        elif self.kind.startswith("EC"):
            # Not PyJWT's to_jwk: Debian's 2.6 drops leading zero bytes of the
            # coordinates, which RFC 7518 6.2.1.2 forbids and the gateway
            # refuses, so about one key in 128 came out unusable.
            size = (self.public.curve.key_size + 7) // 8
            numbers = self.public.public_numbers()
            key = {"kty": "EC", "crv": "P-256" if size == 32 else "P-384",
                   "x": b64url(numbers.x.to_bytes(size, "big")),
                   "y": b64url(numbers.y.to_bytes(size, "big"))}
        else:
            key = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.public))
        key.pop("alg", None)
        key.pop("key_ops", None)
        key.update({"kid": self.kid, "use": "sig"})
        key.update(extra)
        return {k: v for k, v in key.items() if v is not None}

    def token(self, claims, alg, headers=None, kid=True):
        """An honest token signed by PyJWT (kid header unless kid=False)."""
        hdr = dict(headers or {})
        if kid and self.kid is not None:
            hdr.setdefault("kid", self.kid)
        return jwt.encode(claims, self.private, algorithm=alg, headers=hdr or None)

    def sign_bytes(self, data, alg):
        return _algorithm(alg).sign(data, self.private)

    def signer(self, alg):
        return lambda data: self.sign_bytes(data, alg)

    def self_signed_cert_der(self):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
        now = datetime.now(timezone.utc)
        algo = None if self.kind == "Ed25519" else hashes.SHA256()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.public).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                .sign(self.private, algo))
        return cert.public_bytes(serialization.Encoding.DER)


@functools.lru_cache(maxsize=None)
def _private_key(kind, slot):
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "EC-P256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "EC-P384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def make_key(kind, kid, slot=0):
    """A key of `kind`; the same (kind, slot) gives the same key material
    within the session (RSA generation is slow), under any kid."""
    return SigningKey(kind, kid, _private_key(kind, slot))


# The key kind that verifies each JWS algorithm.
ALG_KEY_KIND = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC-P256", "ES384": "EC-P384", "EdDSA": "Ed25519",
}
HMAC_ALGS = ("HS256", "HS384", "HS512")


def claims(sub="user-1", *, iss=ISSUER, aud=AUDIENCE, exp_in=300, now=None, **extra):
    """A claim set valid now (None values are left out)."""
    now = int(time.time()) if now is None else now
    c = {"sub": sub, "iss": iss, "aud": aud, "iat": now, "exp": now + exp_in,
         "jti": f"{time.monotonic_ns()}"}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------
# crypt(3) password hashes

_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _crypt(password, salt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return crypt.crypt(password, salt)


@functools.lru_cache(maxsize=None)
def password_hash(password, method):
    """crypt(3) hash: method "sha512" ($6$), "bcrypt" ($2b$, cost 4 to keep
    tests fast) or "yescrypt" ($y$, libxcrypt; None when unsupported)."""
    if method == "sha512":
        h = _crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
        prefix = "$6$"
    elif method == "bcrypt":
        h = _crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        prefix = "$2b$"
    elif method == "yescrypt":
        salt = "".join(_CRYPT64[b % 64] for b in hashlib.sha256(password.encode()).digest()[:16])
        h = _crypt(password, "$y$j9T$" + salt)
        prefix = "$y$"
    else:
        raise ValueError(method)
    if not h or not h.startswith(prefix) or _crypt(password, h) != h:
        return None
    return h


def require_hash(password, method):
    h = password_hash(password, method)
    if h is None:
        pytest.skip(f"this libc's crypt(3) cannot make {method} hashes")
    return h


# --------------------------------------------------------------------------
# config builders

def addr_of(upstream):
    return upstream if isinstance(upstream, str) else upstream.addr


def route(name, prefix, plugins=None, upstream="svc", **extra):
    r = {"name": name, "match": {"path_prefix": prefix}, "upstream": upstream}
    if plugins:
        r["plugins"] = plugins
    r.update(extra)
    return r


def auth_config(upstream, routes, *, consumers=None, signing_env=None, extra=None):
    """A config dict: one upstream `svc` (a Backend, Recorder or address),
    the given routes, optional consumers and upstream_signing."""
    cfg = {"upstreams": {"svc": {"targets": [addr_of(upstream)]}}}
    if consumers:
        cfg["consumers"] = consumers
    if signing_env:
        cfg["upstream_signing"] = {"secret_env": signing_env}
    cfg["routes"] = routes
    if extra:
        cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------
# assertions on answers

_CHALLENGE_SPLIT = re.compile(r",\s*(?=[A-Za-z0-9!#$%&'*+.^_`|~-]+\s+[A-Za-z0-9!#$%&'*+.^_`|~-]+=)")


def challenges(response):
    """Every WWW-Authenticate challenge of a requests response, whether the
    gateway sent one field per challenge or a comma-joined list."""
    fields = response.raw.headers.getlist("WWW-Authenticate") if response.raw is not None else []
    if not fields and "WWW-Authenticate" in response.headers:
        fields = [response.headers["WWW-Authenticate"]]
    out = []
    for field in fields:
        out.extend(re.sub(r",\s*", ", ", c.strip()) for c in _CHALLENGE_SPLIT.split(field) if c.strip())
    return out


def assert_auth_error(r, status, detail, expected_challenges=()):
    """A problem+json auth answer with the exact detail and exactly the given
    WWW-Authenticate challenges (in any order; () means none)."""
    problem = assert_problem(r.status_code, r.headers, r.content, status)
    assert problem["detail"] == detail, problem
    got = challenges(r)
    assert sorted(got) == sorted(expected_challenges), \
        f"WWW-Authenticate {got}, expected {list(expected_challenges)}"
    return problem


def upstream_headers(r):
    """What the echo backend received (lower-case names)."""
    assert r.status_code == 200, f"{r.status_code}: {r.text[:500]}"
    return r.json()["headers"]


def poll(fn, until, timeout=15.0, interval=0.5):
    """Calls fn() until until(value) holds or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_keys_loaded(gw, path, make_token, timeout=8.0):
    """Polls with fresh tokens until the gateway stops answering 503 (its
    background JWKS fetch has completed); returns the last response."""
    return poll(lambda: gw.get(path, headers=bearer(make_token())),
                lambda r: r.status_code != 503, timeout=timeout, interval=0.1)


# --------------------------------------------------------------------------
# upstream signature (docs/auth.md, "Signed upstream requests")

SIGNATURE_RE = re.compile(r"^t=(\d+),v1=([0-9a-f]{64})$")


def expected_signature(secret, t, method, target, request_id, user_id):
    string = "\n".join([str(t), method, target, request_id, user_id or ""])
    return hmac.new(secret.encode(), string.encode(), hashlib.sha256).hexdigest()


def check_signature(seen, secret, method, max_skew=5):
    """Recomputes X-Gateway-Signature from what the echo backend got."""
    headers = seen["headers"]
    value = headers.get("x-gateway-signature")
    assert value, f"no X-Gateway-Signature upstream: {headers}"
    m = SIGNATURE_RE.match(value)
    assert m, f"X-Gateway-Signature {value!r} is not t=<unix>,v1=<64 hex>"
    t = int(m.group(1))
    assert abs(t - time.time()) <= max_skew, f"t={t}, now={time.time():.0f}"
    target = seen["path"] + (f"?{seen['query']}" if seen["query"] else "")
    want = expected_signature(secret, t, method, target, headers.get("x-request-id", ""),
                              headers.get("x-user-id", ""))
    assert m.group(2) == want, (
        f"v1 {m.group(2)} != HMAC-SHA256 over {[str(t), method, target, headers.get('x-request-id'), headers.get('x-user-id', '')]}")
    return t


# --------------------------------------------------------------------------
# tiny HTTP servers

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.owner._respond(self, body)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = _handle


class _Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.time = time.monotonic()

    def form(self):
        """The urlencoded body as {name: first value}."""
        return {k: v[0] for k, v in urllib.parse.parse_qs(
            self.body.decode(errors="replace"), keep_blank_values=True).items()}


class TinyServer:
    """A threaded HTTP server on 127.0.0.1:<free port> recording every
    request; every answer closes its connection, so stop() leaves nothing
    that could still answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.delay = 0.0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return self.base + path

    def _respond(self, handler, body):
        split = urllib.parse.urlsplit(handler.path)
        req = _Request(handler.command, split.path, split.query,
                       {k.lower(): v for k, v in handler.headers.items()}, body)
        with self.lock:
            self.requests.append(req)
            delay = self.delay
        if delay:
            time.sleep(delay)
        return self.answer(req)

    def answer(self, req):
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def hits(self, path=None):
        with self.lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def requests_for(self, path):
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_hits(self, path, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.hits(path) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.hits(path)

    def stop(self):
        if self.running:
            self.running = False
            self.httpd.shutdown()
            self.httpd.server_close()


def _json_answer(status, obj):
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


class JwksServer(TinyServer):
    """Serves a swappable JWKS at /.well-known/jwks.json (or, with
    fail(status), that status), an OpenID discovery document whose jwks_uri
    points at `jwks_path`, and any extra documents put with serve()."""

    def __init__(self, keys=(), jwks_path=JWKS_PATH):
        super().__init__()
        self.jwks_path = jwks_path
        self.keys = [k.jwk() if isinstance(k, SigningKey) else k for k in keys]
        self.status = 200
        self.docs = {}

    @property
    def jwks_url(self):
        return self.url(self.jwks_path)

    def set_keys(self, keys):
        with self.lock:
            self.keys = [k.jwk() if isinstance(k, SigningKey) else k for k in keys]

    def fail(self, status=500):
        with self.lock:
            self.status = status

    def recover(self):
        with self.lock:
            self.status = 200

    def serve(self, path, obj):
        with self.lock:
            self.docs[path] = obj

    def jwks_hits(self):
        return self.hits(self.jwks_path)

    def answer(self, req):
        with self.lock:
            status, keys, docs = self.status, list(self.keys), dict(self.docs)
        if req.path == self.jwks_path:
            if status != 200:
                return _json_answer(status, {"error": "unavailable"})
            return 200, {"Content-Type": "application/jwk-set+json"}, json.dumps({"keys": keys}).encode()
        if req.path == DISCOVERY_PATH:
            return _json_answer(200, {"issuer": self.base, "jwks_uri": self.jwks_url,
                                      "id_token_signing_alg_values_supported": ["RS256"]})
        if req.path in docs:
            return _json_answer(200, docs[req.path])
        return super().answer(req)


class IntrospectionServer(TinyServer):
    """RFC 7662: POST /introspect with HTTP Basic client credentials and a
    form body token=...; answers from `tokens` (unknown: active false).
    `status` / `raw_body` force a broken answer."""

    PATH = "/introspect"

    def __init__(self, client_id="gw", client_secret="introspect-secret-0123456789"):
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens = {}
        self.status = 200
        self.raw_body = None

    @property
    def introspect_url(self):
        return self.url(self.PATH)

    def set_token(self, token, **answer):
        with self.lock:
            self.tokens[token] = answer

    def calls(self, token=None):
        with self.lock:
            return sum(1 for r in self.requests if r.path == self.PATH
                       and (token is None or r.form().get("token") == token))

    def answer(self, req):
        if req.path != self.PATH:
            return super().answer(req)
        if req.method != "POST":
            return _json_answer(405, {"error": "method"})
        expected = "Basic " + base64.b64encode(
            f"{self.client_id}:{self.client_secret}".encode()).decode()
        if req.headers.get("authorization") != expected:
            return _json_answer(401, {"error": "invalid_client"})
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _json_answer(400, {"error": "invalid_request"})
        with self.lock:
            status, raw, tokens = self.status, self.raw_body, dict(self.tokens)
        if status != 200:
            return _json_answer(status, {"error": "server_error"})
        if raw is not None:
            return 200, {"Content-Type": "application/json"}, raw
        token = req.form().get("token")
        return _json_answer(200, tokens.get(token, {"active": False}))


# --------------------------------------------------------------------------
# fixtures (import them into a test module to use them)

@pytest.fixture
def jwks_server():
    """jwks_server(keys=(), jwks_path=...) starts a JwksServer; all stopped at teardown."""
    made = []

    def start(keys=(), **kwargs):
        s = JwksServer(keys, **kwargs)
        made.append(s)
        return s

    yield start
    for s in made:
        s.stop()


@pytest.fixture
def introspection_server():
    made = []

    def start(**kwargs):
        s = IntrospectionServer(**kwargs)
        made.append(s)
        return s

    yield start
    for s in made:
        s.stop()


@pytest.fixture
def echo(backend):
    return backend("echo")
