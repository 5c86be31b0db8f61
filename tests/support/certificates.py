"""Certificates made for a test run (never committed): a CA, server and client certificates signed by it, and
the odd ones a TLS test needs (another CA, an expired server certificate), as PEM files in a directory.

Server certificates name 127.0.0.1 and localhost, so clients that check the host name (librdkafka, the Java
client and kafka-python all do by default) accept them on the loopback address. A cluster node's certificate
(`node`, `other_node`) is a server certificate that is a client certificate too (both extended key usages): a
broker presents its key store both when it serves and when it connects to another broker.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Identity:
    """A certificate and its key: `cert` (PEM, the certificate alone), `key` (PEM, unencrypted PKCS#8) and
    `bundle` (key then certificate in one file, as a PEM key store holds them)."""
    cert: Path
    key: Path
    bundle: Path


@dataclass
class _Authority:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _authority(directory: Path, common_name: str) -> _Authority:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{common_name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return _Authority(name, key, cert, path)


def _issue(directory: Path, authority: _Authority, common_name: str, *, server: bool, client: bool | None = None,
           expired: bool = False) -> Identity:
    """`server`: serverAuth, with 127.0.0.1 and localhost as subject alternative names; `client`: clientAuth
    (by default a certificate is one or the other)."""
    client = not server if client is None else client
    usages = [usage for usage, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                          (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    key = _key()
    not_after = _now() - datetime.timedelta(days=1) if expired else _now() + datetime.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Skein tests")]))
        .issuer_name(authority.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=2))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                       critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(authority.key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    identity = Identity(directory / f"{common_name}.crt", directory / f"{common_name}.key",
                        directory / f"{common_name}.pem")
    identity.cert.write_bytes(cert_pem)
    identity.key.write_bytes(key_pem)
    identity.bundle.write_bytes(key_pem + cert_pem)
    return identity


@dataclass
class CertificateSet:
    """`ca` signs `server`, `client`; `other_ca` signs `stranger` (a client no broker trusts) and
    `other_server` (a server no client trusts); `expired_server` is signed by `ca` but expired yesterday;
    `renewed_server` is another certificate of the server's, signed by `ca` (a renewal); `node` (signed by `ca`)
    and `other_node` (signed by `other_ca`) are cluster nodes' certificates, server and client at once."""
    ca: Path
    other_ca: Path
    server: Identity
    client: Identity
    stranger: Identity
    other_server: Identity
    expired_server: Identity
    renewed_server: Identity
    node: Identity
    other_node: Identity


def make_certificates(directory: Path) -> CertificateSet:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _authority(directory, "skein-test-ca")
    other_ca = _authority(directory, "another-ca")
    return CertificateSet(
        ca=ca.path,
        other_ca=other_ca.path,
        server=_issue(directory, ca, "broker", server=True),
        client=_issue(directory, ca, "alice", server=False),
        stranger=_issue(directory, other_ca, "mallory", server=False),
        other_server=_issue(directory, other_ca, "impostor", server=True),
        expired_server=_issue(directory, ca, "expired-broker", server=True, expired=True),
        renewed_server=_issue(directory, ca, "renewed-broker", server=True),
        node=_issue(directory, ca, "cluster-node", server=True, client=True),
        other_node=_issue(directory, other_ca, "foreign-node", server=True, client=True),
    )
