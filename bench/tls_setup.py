"""TLS for the TLS scenarios (9-11): one certificate for every server, the
client-side TLS settings, and the wrk shim that makes those settings hold.

Made once per bench run in the run's temporary directory (never in the
repository): an ECDSA P-256 key and a self-signed certificate for 127.0.0.1 /
localhost made with the openssl CLI, the same PEM pair handed to nginx,
HAProxy (cert + key in one file) and Gatehouse, and tls_client_shim.c
compiled with cc into an LD_PRELOAD library for wrk.

What every TLS scenario negotiates, whatever the server prefers: TLS 1.3,
TLS_AES_128_GCM_SHA256, X25519, ECDSA P-256 (SHA-256) signatures. The servers
allow TLS 1.2 and 1.3 with their default suites; the clients offer only this
suite and group (wrk through the shim, h2load with --tls13-ciphers and
--groups), and every run checks what was negotiated.
"""

import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_SOURCE = os.path.join(HERE, "tls_client_shim.c")

TLS_VERSION = "TLSv1.3"
TLS_SUITE = "TLS_AES_128_GCM_SHA256"
TLS_GROUP = "X25519"
# What the shim reports per handshake ("version suite group").
EXPECTED_NEGOTIATION = f"{TLS_VERSION} {TLS_SUITE} {TLS_GROUP}"
SUMMARY = (f"{TLS_VERSION}, {TLS_SUITE}, {TLS_GROUP}, ECDSA P-256 certificate (self-signed, made at the start "
           f"of the run); servers allow TLS 1.2-1.3 with their default suites, the clients offer only this suite "
           f"and group")


class TlsSetupError(Exception):
    pass


def _run(argv, what):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TlsSetupError(f"{what}: {e}")
    if p.returncode != 0:
        raise TlsSetupError(f"{what} failed (exit {p.returncode}): {(p.stderr or p.stdout).strip()[-400:]}")
    return p.stdout


class TlsMaterial:
    """The run's certificate, key and wrk shim (see the module docstring)."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
        self.dir = directory
        if not shutil.which("openssl"):
            raise TlsSetupError("the openssl CLI is needed to make the TLS certificate (scripts/install-deps)")
        self.cert = os.path.join(directory, "server.crt")
        self.key = os.path.join(directory, "server.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-pkeyopt", "ec_param_enc:named_curve", "-sha256", "-nodes", "-days", "2",
              "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
              "-keyout", self.key, "-out", self.cert], "openssl req (ECDSA P-256 certificate)")
        # Only the servers' own (master) processes read them, as the harness's
        # user; the directory is removed with the run's temporary directory.
        os.chmod(self.cert, 0o644)
        os.chmod(self.key, 0o600)
        self.combined = os.path.join(directory, "server.pem")  # HAProxy: certificate then key
        with open(self.combined, "w") as out:
            for path in (self.cert, self.key):
                with open(path) as f:
                    out.write(f.read())
        os.chmod(self.combined, 0o600)
        self.shim = None
        self.shim_error = None

    def wrk_shim(self):
        """Path of the compiled shim; raises TlsSetupError (remembered) if it cannot be built."""
        if self.shim:
            return self.shim
        if self.shim_error:
            raise TlsSetupError(self.shim_error)
        cc = shutil.which("cc") or shutil.which("gcc")
        out = os.path.join(self.dir, "tls_client_shim.so")
        try:
            if not cc:
                raise TlsSetupError("no C compiler (cc) to build the wrk TLS shim")
            _run([cc, "-O2", "-shared", "-fPIC", "-o", out, SHIM_SOURCE, "-lssl", "-lcrypto", "-ldl"],
                 "building bench/tls_client_shim.c (needs cc and libssl-dev)")
        except TlsSetupError as e:
            self.shim_error = str(e)
            raise
        self.shim = out
        return out

    def wrk_env(self, stats_path, allow_resume=False):
        """Environment for wrk: the shim preloaded, one suite and group, counts written to stats_path."""
        env = dict(os.environ)
        env["LD_PRELOAD"] = self.wrk_shim()
        env["BENCH_TLS_STATS"] = stats_path
        env["BENCH_TLS_SUITES"] = TLS_SUITE
        env["BENCH_TLS_GROUPS"] = TLS_GROUP
        if allow_resume:
            env["BENCH_TLS_ALLOW_RESUME"] = "1"
        return env

    def ssl_context(self, alpn=None):
        """A client context for the readiness checks: verifies the server's certificate is this one."""
        import ssl
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


def tls_material(options):
    """The run's TlsMaterial, made on first use (options is shared by every scenario)."""
    if options.get("tls_material") is None:
        options["tls_material"] = TlsMaterial(os.path.join(options["tmp"], "tls-material"))
    return options["tls_material"]
