"""A customer CA made with `cryptography`, signing cluster CSRs as AWS's CloudHSM guide does
with OpenSSL (RSA 2048 root, SHA-256), for the CloudHSM tests."""

import datetime
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keyhold tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=3650))


def new_ca(cn="Keyhold Test Customer CA"):
    """A self-signed root CA with Basic Constraints (AWS's trust anchor requirements):
    (private key, certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


@functools.lru_cache(maxsize=None)
def customer_ca():
    """The test run's customer CA (customerCA.key, customerCA.crt)."""
    return new_ca()


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def trust_anchor():
    """customerCA.crt, PEM."""
    return pem(customer_ca()[1])


def sign(csr_pem, ca=None, public_key=None):
    """The cluster certificate: `csr_pem` signed by `ca` (default the customer CA), for the
    CSR's public key unless `public_key` is given."""
    ca_key, ca_cert = ca or customer_ca()
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key or csr.public_key())
        .serial_number(x509.random_serial_number())
    )
    return pem(_validity(builder).sign(ca_key, hashes.SHA256()))
