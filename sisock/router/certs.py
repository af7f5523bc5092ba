"""``sisock certs``: a site CA and a server certificate for the router.

Writes ``ca.pem``, ``ca.key``, ``server.pem`` and ``server.key``; keys are
mode 0600 (kept keys too) and files that exist are kept unless ``force`` (so a
re-run never invalidates the CA that every host already trusts).
"""
from __future__ import annotations

import datetime
import ipaddress
import socket
import stat
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sisock.files import private_dir, set_mode, write_private

CA_DAYS = 3650
SERVER_DAYS = 825
#: A server certificate closer than this to its expiry is re-issued (the CA is kept).
RENEW_DAYS = 30
FILES = ("ca.pem", "ca.key", "server.pem", "server.key")


def default_names() -> List[str]:
    """Names a certificate made on this machine should cover."""
    return ["localhost", "127.0.0.1", "::1", socket.gethostname()]


#: The mode of each file, set on kept files too.
MODES = {"ca.pem": 0o644, "ca.key": 0o600, "server.pem": 0o644, "server.key": 0o600}


def _write(path: Path, data: bytes, mode: int) -> None:
    write_private(path, data, mode)


def fix_modes(directory: Path) -> List[Tuple[str, int, int]]:
    """Give the folder and the files already in it their modes; return (file, old, new)
    for each file that had another (a key readable by others, say)."""
    changed = []
    private_dir(directory)
    for name, mode in MODES.items():
        path = directory / name
        if path.exists():
            old = stat.S_IMODE(path.stat().st_mode)
            if old != mode:
                set_mode(path, mode)
                changed.append((name, old, mode))
    return changed


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: List[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def make_ca(directory: Path) -> None:
    """A self-signed CA, valid ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sisock site CA")])
    cert = (
        _builder(name, name, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / "ca.key", _key_pem(key), 0o600)
    _write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def make_server(directory: Path, names: Sequence[str]) -> None:
    """A server certificate signed by the CA in ``directory``, with ``names`` as SANs."""
    # a CA key or certificate of a kind that cannot sign (X25519, DH) fails in sign() below
    ca_key = cast(CertificateIssuerPrivateKeyTypes,
                  serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None))
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), SERVER_DAYS)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                cast(CertificateIssuerPublicKeyTypes, ca_cert.public_key())), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / "server.key", _key_pem(key), 0o600)
    _write(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _expiring(directory: Path) -> bool:
    """True when the server certificate expires within RENEW_DAYS."""
    cert = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left < datetime.timedelta(days=RENEW_DAYS)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def missing_names(directory: Path, names: Sequence[str]) -> List[str]:
    """The names that the existing server certificate does not cover."""
    cert = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {str(v) for v in san.get_values_for_type(x509.DNSName) + san.get_values_for_type(x509.IPAddress)}
    return [n for n in names if _canonical(n) not in have]


def make_certs(directory: Path, names: Sequence[str] = (), force: bool = False) -> List[str]:
    """Make what is missing (or everything with ``force``), re-issue a server certificate
    from the existing CA when it nears expiry; return the files written. The folder
    gets mode 0750, keys 0600 and certificates 0644, kept files included."""
    fix_modes(directory)
    names = list(names) or default_names()
    written = []
    if force or not (directory / "ca.pem").exists() or not (directory / "ca.key").exists():
        make_ca(directory)
        written += ["ca.pem", "ca.key"]
    server_exists = (directory / "server.pem").exists() and (directory / "server.key").exists()
    if written or not server_exists or _expiring(directory):
        make_server(directory, names)
        written += ["server.pem", "server.key"]
    return written
