"""A client for the registry HTTP API v2 (OCI distribution-spec), on the standard library.

Why urllib and not httpx/requests: urllib is always there, handles TLS contexts, redirects
(blob GETs are often 307s to object storage) and streaming bodies, and none of the well-kept
HTTP libraries is installed (httpx is not; adding a dependency for a dozen request kinds
buys little). Each call opens its own connection, which keeps the three download threads
independent.

Transport (Docker's rules): HTTPS, verified against the system CAs plus
``<root>/certs.d/<host:port>/*.crt`` and ``/etc/docker/certs.d/<host:port>/*.crt``
(``client.cert``/``client.key`` there for mutual TLS). Registries marked insecure
(``--insecure-registry``, ``insecure-registries`` in ``<root>/daemon.json``, names or CIDRs,
and every address in 127.0.0.0/8 or ``localhost``) are tried over HTTPS without verification
first, then over plain HTTP. A registry with a CA in certs.d is always verified, insecure or not,
so a wrong certificate is an error rather than a silent fallback.

Auth: a 401's ``WWW-Authenticate`` says what to do. Bearer: ask the realm for a token for
the scopes (with Basic credentials when logged in), cache it and retry once. Basic: send the
stored credentials and retry. Proxies from the environment are not used.
"""

from __future__ import annotations

import base64
import glob
import ipaddress
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from http.client import HTTPResponse
from pathlib import Path

from ..errors import EngineError, NotFound
from . import auth

#: how often an idempotent request is tried when the registry answers 5xx or drops us
ATTEMPTS = 4
BACKOFF = (0.2, 0.5, 1.0, 2.0)
TIMEOUT = 60.0
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


class RegistryError(EngineError):
    """The registry refused or failed a request; the message is one line."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Unauthorized(RegistryError):
    pass


class TransientError(RegistryError):
    """5xx or a dropped connection: worth another try."""


class ConnectError(TransientError):
    """No connection to the registry at all (refused, unresolvable, timed out)."""


def _hostname(host: str) -> str:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return name.strip("[]")


def is_loopback(host: str) -> bool:
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def marked_insecure(host: str, marked: Iterable[str]) -> bool:
    """Whether ``host`` (host[:port]) is one of ``marked``: a name as given, or an address
    inside a CIDR entry (``10.0.0.0/8``), as Docker's insecure-registries allow. Docker
    also resolves names to match them against CIDRs; pydock matches literal addresses
    only, so that deciding how to connect never sends a DNS query."""
    try:
        ip = ipaddress.ip_address(_hostname(host))
    except ValueError:
        ip = None
    for entry in marked:
        if entry == host:
            return True
        if ip is not None and "/" in entry:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def dial_error(method: str, url: str, host: str, err: BaseException) -> str:
    """A connection failure worded as Go's net/http reports it, which is what Docker
    prints: ``Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect:
    connection refused``."""
    reason = getattr(err, "reason", err)
    op = method[:1].upper() + method[1:].lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if isinstance(reason, socket.gaierror):
        why = f"dial tcp: lookup {name.strip('[]')}: no such host"
    elif isinstance(reason, socket.timeout | TimeoutError):
        why = f"dial tcp {host}: i/o timeout"
    elif isinstance(reason, ConnectionRefusedError):
        why = f"dial tcp {host}: connect: connection refused"
    elif isinstance(reason, OSError) and reason.errno and reason.strerror:
        why = f"dial tcp {host}: connect: {reason.strerror.lower()}"
    else:
        why = str(reason)
    return f'{op} "{url}": {why}'


def insecure_registries(root: Path) -> list[str]:
    try:
        data = json.loads((root / "daemon.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return []
    found = data.get("insecure-registries", []) if isinstance(data, dict) else []
    return [str(x) for x in found]


def _error_message(body: bytes, status: int, what: str) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        parts = [f"{e.get('code', '').lower()}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return f"{what}: {'; '.join(parts)}"
    except (ValueError, AttributeError):
        pass
    return f"{what}: HTTP {status}"


class _NoCrossHostAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry the registry's Authorization to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != req.host:
            new.remove_header("Authorization")
        return new


class Registry:
    """One registry endpoint (``host[:port]``) with its transport and credentials."""

    def __init__(
        self,
        endpoint: str,
        *,
        domain: str | None = None,
        root: Path | None = None,
        insecure: Iterable[str] = (),
        credentials: tuple[str, str] | None = None,
        scheme: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.domain = domain or endpoint
        self.creds = credentials if credentials is not None else auth.get_credentials(self.domain)
        marked = set(insecure) | set(insecure_registries(root) if root else [])
        self.insecure = (
            is_loopback(endpoint)
            or marked_insecure(endpoint, marked)
            or marked_insecure(self.domain, marked)
        )
        self.ca_files, self.client_cert = self._certs(root)
        #: None until probed; a mirror's URL (endpoints.Endpoint) names it up front
        self.scheme: str | None = scheme
        self.tokens: dict[str, str] = {}
        self.basic = False
        self.requests = 0

    # -- transport -------------------------------------------------------------------
    def _certs(self, root: Path | None) -> tuple[list[str], tuple[str, str] | None]:
        dirs = ([str(root / "certs.d")] if root else []) + ["/etc/docker/certs.d"]
        cas: list[str] = []
        cert = None
        for d in dirs:
            host_dir = os.path.join(d, self.endpoint.replace(":", ":"))
            cas += sorted(glob.glob(os.path.join(host_dir, "*.crt")))
            for c in sorted(glob.glob(os.path.join(host_dir, "*.cert"))):
                key = c[: -len(".cert")] + ".key"
                if os.path.exists(key):
                    cert = (c, key)
        return cas, cert

    def _context(self, verify: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if verify:
            for ca in self.ca_files:
                ctx.load_verify_locations(cafile=ca)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert:
            ctx.load_cert_chain(*self.client_cert)
        return ctx

    def _opener(self, scheme: str) -> urllib.request.OpenerDirector:
        verify = not self.insecure or bool(self.ca_files)
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=self._context(verify)),
            _NoCrossHostAuth(),
        )

    def _probe(self) -> None:
        """Pick https or (insecure registries only) http, as Docker's endpoint fallback."""
        if self.scheme:
            return
        if not self.insecure or self.ca_files:
            self.scheme = "https"
            return
        for scheme in ("https", "http"):
            url = f"{scheme}://{self.endpoint}/v2/"
            try:
                self._opener(scheme).open(url, timeout=TIMEOUT).close()
            except urllib.error.HTTPError:
                pass  # any HTTP answer (401...) proves the scheme works
            except (urllib.error.URLError, OSError) as e:
                # Docker tries the insecure registry's HTTP endpoint after any HTTPS
                # failure, and reports the last endpoint's error (distribution/pull.go)
                if scheme == "https":
                    continue
                raise ConnectError(dial_error("GET", url, self.endpoint, e)) from None
            self.scheme = scheme
            return

    def url(self, path: str) -> str:
        self._probe()
        return path if "://" in path else f"{self.scheme}://{self.endpoint}{path}"

    # -- auth ------------------------------------------------------------------------
    def _auth_header(self, scopes: tuple[str, ...]) -> str | None:
        token = self.tokens.get(" ".join(scopes))
        if token:
            return f"Bearer {token}"
        if self.basic and self.creds:
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    def _authenticate(self, challenge: str, scopes: tuple[str, ...]) -> None:
        scheme, params = auth.parse_challenge(challenge)
        if scheme == "basic":
            if not self.creds or self.basic:
                raise Unauthorized(
                    f"unauthorized: authentication required for {self.domain}"
                    + ("" if self.creds else f" (pydock login {self.domain})"),
                    401,
                )
            self.basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise Unauthorized(f"unauthorized: unsupported challenge from {self.domain}", 401)
        query = [("service", params["service"])] if params.get("service") else []
        wanted = list(scopes) or ([params["scope"]] if params.get("scope") else [])
        query += [("scope", s) for s in wanted]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?")
        url += urllib.parse.urlencode(query)
        req = urllib.request.Request(url)
        if self.creds:
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            req.add_header("Authorization", "Basic " + base64.b64encode(raw).decode())
        try:
            with self._opener("https").open(req, timeout=TIMEOUT) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise Unauthorized(
                f"unauthorized: token request to {params['realm']} failed: HTTP {e.code}", 401
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RegistryError(f"cannot get a token from {params['realm']}: {e}") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise Unauthorized(f"unauthorized: no token from {params['realm']}", 401)
        self.tokens[" ".join(scopes)] = token

    # -- requests --------------------------------------------------------------------
    def open(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
        data: object = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        retry: bool = True,
    ) -> HTTPResponse:
        """One request, authenticated on demand; 5xx and dropped connections are retried
        when ``retry`` (the request is idempotent and its body can be sent again)."""
        attempts = ATTEMPTS if retry else 1
        authed = False
        attempt = 0
        while True:
            req = urllib.request.Request(self.url(path), data=data, method=method)  # type: ignore[arg-type]
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            hdr = self._auth_header(scopes)
            if hdr:
                req.add_header("Authorization", hdr)
            self.requests += 1
            try:
                resp = self._opener(self.scheme or "https").open(req, timeout=TIMEOUT)
            except urllib.error.HTTPError as e:
                if e.code == 401 and not authed:
                    challenge = e.headers.get("WWW-Authenticate", "")
                    e.close()
                    self._authenticate(challenge, scopes)
                    authed = True
                    continue
                body = e.read()
                e.close()
                if e.code in ok:
                    return e  # type: ignore[return-value]
                message = _error_message(body, e.code, what or f"{method} {path}")
                if e.code >= 500:
                    attempt += 1
                    if attempt < attempts:
                        time.sleep(BACKOFF[attempt - 1])
                        continue
                    raise TransientError(message, e.code) from None
                if e.code == 401:
                    raise Unauthorized(message, 401) from None
                if e.code == 404:
                    raise NotFound(message) from None
                raise RegistryError(message, e.code) from None
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                attempt += 1
                if attempt < attempts and not isinstance(reason, ssl.SSLCertVerificationError):
                    time.sleep(BACKOFF[attempt - 1])
                    continue
                if isinstance(reason, ssl.SSLError):
                    raise RegistryError(f"TLS error talking to {self.endpoint}: {reason}") from None
                raise ConnectError(dial_error(method, req.full_url, self.endpoint, e)) from None
            if resp.status not in ok:
                resp.close()
                raise RegistryError(
                    f"{what or method + ' ' + path}: HTTP {resp.status}", resp.status
                )
            return resp

    def ping(self) -> None:
        """GET /v2/: the API is there and our credentials (if any) are accepted."""
        self.open("GET", "/v2/", what=f"login to {self.domain}").close()

    def get_manifest(self, repo: str, ref: str, scopes: tuple[str, ...]) -> tuple[bytes, str]:
        """(body, media type) of ``repo``'s manifest ``ref`` (a tag or a digest)."""
        with self.open(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            scopes=scopes,
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
            what=f"manifest for {repo}:{ref}" if not ref.startswith("sha256:") else repo,
        ) as r:
            body = r.read()
            mt = r.headers.get("Content-Type", "").split(";")[0].strip()
        return body, mt
