"""Registry auth and TLS against the real docker-registry: htpasswd Basic auth with
login/logout, the Bearer token flow with a small token server the test runs (JWTs signed
with the openssl CLI), and HTTPS with a test-made CA in ``<root>/certs.d/<host:port>/``."""

from __future__ import annotations

import base64
import http.server
import json
import os
import stat
import subprocess
import threading
import time
import urllib.parse
import warnings
from pathlib import Path

import pytest
from pdcli import Pydock
from registryfix import REGISTRY_BIN, RegistryProcess

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")

USER, PASSWORD = "alice", "s3cret-pw"


def bcrypt_hash(password: str) -> str:
    """bcrypt via libcrypt (the stdlib crypt module; libxcrypt on Debian has $2b$)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            pytest.skip("no crypt module (Python >= 3.13) to make a bcrypt htpasswd")
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not h or not h.startswith("$2"):
        pytest.skip("libcrypt has no bcrypt")
    return h


def make_cert(d: Path, cn: str = "127.0.0.1") -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=IP:{cn}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def pd(scratch: Path):
    p = Pydock(scratch / "root", "vfs")
    p("image", "bootstrap", check=True)
    os.environ["DOCKER_CONFIG"] = str(scratch / "dockercfg")
    try:
        yield p
    finally:
        os.environ.pop("DOCKER_CONFIG", None)
        p.cleanup()


def test_basic_auth_login_push_pull_logout(pd: Pydock, scratch: Path) -> None:
    htpasswd = scratch / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt_hash(PASSWORD)}\n")
    reg = RegistryProcess(scratch / "reg", htpasswd=htpasswd)
    try:
        name = f"{reg.host}/private:v1"
        pd.out("tag", "busybox", name)
        res = pd("push", name)
        assert res.returncode == 1
        err = res.stderr.decode().strip()
        assert len(err.splitlines()) == 1 and "authentication required" in err
        bad = pd("login", "-u", USER, "--password-stdin", reg.host, input=b"wrong\n")
        assert bad.returncode == 1 and "unauthorized" in bad.stderr.decode()
        assert not (scratch / "dockercfg" / "config.json").exists()
        ok = pd("login", "-u", USER, "--password-stdin", reg.host, input=f"{PASSWORD}\n".encode())
        assert ok.returncode == 0 and "Login Succeeded" in ok.stdout.decode()
        cfg_path = scratch / "dockercfg" / "config.json"
        assert stat.S_IMODE(cfg_path.stat().st_mode) == 0o600
        entry = json.loads(cfg_path.read_text())["auths"][reg.host]
        assert base64.b64decode(entry["auth"]).decode() == f"{USER}:{PASSWORD}"
        pd.out("push", name)
        pd.out("rmi", name)
        assert "Downloaded newer image" in pd.out("pull", name)
        assert "Removing login credentials" in pd.out("logout", reg.host)
        assert json.loads(cfg_path.read_text())["auths"] == {}
        res = pd("pull", name)
        assert res.returncode == 1 and "authentication required" in res.stderr.decode()
    finally:
        reg.stop()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token server (docker/distribution token auth spec): checks Basic credentials and
    signs an RS256 JWT for the requested scopes with the openssl CLI."""

    def __init__(self, key: Path, cert: Path) -> None:
        der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout  # fmt: skip
        self.x5c = base64.b64encode(der).decode()
        self.key = key
        self.requests: list[dict] = []
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_GET(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                srv.requests.append(q)
                creds = self.headers.get("Authorization", "")
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if creds != want:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": srv.token(q.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scopes: list[str]) -> str:
        access = []
        for s in scopes:
            typ, name, actions = s.split(":")[0], ":".join(s.split(":")[1:-1]), s.split(":")[-1]
            access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": "pydock-test-issuer", "sub": USER, "aud": "pydock-test",
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                  "access": access}  # fmt: skip
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sign = ["openssl", "dgst", "-sha256", "-sign", str(self.key)]
        sig = subprocess.run(sign, input=signing.encode(), check=True, capture_output=True).stdout
        return f"{signing}.{_b64(sig)}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_bearer_token_flow(pd: Pydock, scratch: Path) -> None:
    cert, key = make_cert(scratch / "tokencert", "127.0.0.1")
    ts = TokenServer(key, cert)
    reg = RegistryProcess(scratch / "reg", token={
        "realm": f"http://127.0.0.1:{ts.port}/token", "service": "pydock-test",
        "issuer": "pydock-test-issuer", "rootcertbundle": str(cert)})  # fmt: skip
    try:
        name = f"{reg.host}/tok/app:v1"
        pd.out("tag", "busybox", name)
        res = pd("push", name)
        assert res.returncode == 1 and "unauthorized" in res.stderr.decode()
        pd.out("login", "-u", USER, "--password-stdin", reg.host, input=f"{PASSWORD}\n".encode())
        pd.out("push", name)
        assert any("repository:tok/app:pull,push" in q.get("scope", []) for q in ts.requests)
        assert all(q.get("service") == ["pydock-test"] for q in ts.requests)
        pd.out("rmi", name)
        assert "Downloaded newer image" in pd.out("pull", name)
    finally:
        reg.stop()
        ts.stop()


def test_https_with_ca_in_certs_d(pd: Pydock, scratch: Path) -> None:
    cert, key = make_cert(scratch / "tls")
    reg = RegistryProcess(scratch / "reg", tls=(cert, key))
    try:
        name = f"{reg.host}/secure:v1"
        pd.out("tag", "busybox", name)
        certs = pd.root / "certs.d" / reg.host
        certs.mkdir(parents=True)
        other, _ = make_cert(scratch / "other")
        (certs / "ca.crt").write_bytes(other.read_bytes())  # the wrong CA: refused
        res = pd("push", name)
        assert res.returncode == 1
        assert "certificate verify failed" in res.stderr.decode()
        (certs / "ca.crt").write_bytes(cert.read_bytes())
        pd.out("push", name)
        pd.out("rmi", name)
        assert "Downloaded newer image" in pd.out("pull", name)
        # without a CA, 127.0.0.0/8 is an insecure registry, as Docker has it: TLS unverified
        (certs / "ca.crt").unlink()
        assert "Image is up to date" in pd.out("pull", name)
    finally:
        reg.stop()
