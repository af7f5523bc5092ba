"""Who may read sisock-http: HTTP basic auth (``HTTP_USER``/``HTTP_PASSWORD``) and/or a
bearer token (``HTTP_TOKEN``), both settable in Grafana's datasource, and its optional TLS.

Credentials are compared in constant time (:func:`hmac.compare_digest`), so
the time of a refusal says nothing about how much of a guess was right.
Without credentials sisock-http may only listen on loopback: :func:`check_startup`
refuses anything else at start, as the development WAMP secret is refused.
"""
from __future__ import annotations

import base64
import binascii
import hmac
from typing import Mapping, MutableMapping, Optional, Tuple

from sisock.config import Config, ConfigError, is_loopback
from sisock.http.errors import Unauthorized

REALM = "sisock"


def check_startup(config: Config) -> None:
    """Refuse settings that would leave sisock-http open off loopback, or half-set credentials or TLS."""
    if bool(config.http_user) != bool(config.http_password):
        raise ConfigError("HTTP_USER and HTTP_PASSWORD go together: set both (basic auth) or neither")
    if config.http_user and ":" in config.http_user:
        raise ConfigError(f"HTTP_USER={config.http_user!r}: a user name cannot hold ':' (HTTP basic auth)")
    if bool(config.http_tls_cert) != bool(config.http_tls_key):
        raise ConfigError("HTTP_TLS_CERT and HTTP_TLS_KEY go together: set both (https) or neither")
    for variable in ("HTTP_TLS_CERT", "HTTP_TLS_KEY"):
        path = getattr(config, variable.lower())
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    handle.read(1)
            except OSError as exc:
                raise ConfigError(f"{variable}={str(path)!r}: cannot read it ({exc.strerror})") from None
    if not is_loopback(config.http_host) and not Authenticator(config).required:
        raise ConfigError(f"HTTP_HOST={config.http_host!r} is not loopback but sisock-http has no credentials: "
                          "set HTTP_USER and HTTP_PASSWORD (or HTTP_TOKEN)")


def _basic(header: str) -> Optional[Tuple[bytes, bytes]]:
    """(user, password) of an ``Authorization: Basic ...`` value, or None if it is not one."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return None
    return (user, password) if sep else None


class Authenticator:
    """Checks a request's ``Authorization`` header against the configured credentials."""

    def __init__(self, config: Config) -> None:
        self._set(config.http_user, config.http_password, config.http_token)

    @classmethod
    def of(cls, user: Optional[str], password: Optional[str], token: Optional[str] = None) -> "Authenticator":
        """The same checks for other credentials (a metrics endpoint's)."""
        made = cls.__new__(cls)
        made._set(user, password, token)
        return made

    def _set(self, user: Optional[str], password: Optional[str], token: Optional[str]) -> None:
        self.user = (user or "").encode()
        self.password = (password or "").encode()
        self.token = (token or "").encode()

    @property
    def required(self) -> bool:
        """False when no credentials are set (loopback only, see :func:`check_startup`)."""
        return bool(self.password or self.token)

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401."""
        schemes = [f'Basic realm="{REALM}", charset="UTF-8"'] if self.password else []
        return ", ".join(schemes + ([f'Bearer realm="{REALM}"'] if self.token else []))

    def allows(self, header: str) -> bool:
        """True when ``header`` (``Authorization``) carries the right user and password, or the token."""
        scheme, _, value = header.strip().partition(" ")
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), self.token)
        pair = _basic(header) if self.password else None
        if pair is None:
            return False
        # both compared, always: no early exit on a wrong user
        same_user = hmac.compare_digest(pair[0], self.user)
        same_password = hmac.compare_digest(pair[1], self.password)
        return same_user and same_password

    def allows_pair(self, user: str, password: str) -> bool:
        """True for the configured user and password given as they are (InfluxDB's ``u``/``p``), or
        for the token given as the password."""
        if self.token and hmac.compare_digest(password.encode(), self.token):
            return True
        if not self.password:
            return False
        same_user = hmac.compare_digest(user.encode(), self.user)
        same_password = hmac.compare_digest(password.encode(), self.password)
        return same_user and same_password

    def check(self, headers: Mapping[str, str], response_headers: MutableMapping[str, str]) -> None:
        """Raise :class:`Unauthorized` (with ``WWW-Authenticate`` set in ``response_headers``)
        unless the request may be answered."""
        if not self.required:
            return
        header = headers.get("Authorization", "")
        if header and self.allows(header):
            return
        response_headers["WWW-Authenticate"] = self.challenge()
        raise Unauthorized("wrong credentials" if header else
                           "authentication required (HTTP basic auth or a bearer token)")
