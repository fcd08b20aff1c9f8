"""The internal service credential: one shared token every call carries, and optionally mTLS."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import grpc

TOKEN_VARIABLE = "BILLING_SERVICE_TOKEN"
TLS_VARIABLES = ("BILLING_TLS_CERT_FILE", "BILLING_TLS_KEY_FILE", "BILLING_TLS_CA_FILE")
AUTHORIZATION_METADATA_KEY = "authorization"
# Metadata values are visible ASCII; 16 characters keep a guessable word out.
_TOKEN = re.compile(r"[\x21-\x7e]{16,}")


class CredentialError(ValueError):
    """The credential is missing or unusable: the process must not start."""


@dataclass(frozen=True)
class MutualTls:
    """One certificate per process, presented as server and as client, and the CA that signs
    every peer's certificate."""

    certificate: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    ca: bytes = field(repr=False)

    @classmethod
    def read(cls, certificate: Path, private_key: Path, ca: Path) -> "MutualTls":
        try:
            return cls(certificate.read_bytes(), private_key.read_bytes(), ca.read_bytes())
        except OSError as error:
            raise CredentialError(f"cannot read a TLS file: {error}") from None

    def server(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate)],
            root_certificates=self.ca,
            require_client_auth=True,
        )

    def channel(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.private_key,
            certificate_chain=self.certificate,
        )


@dataclass(frozen=True)
class ServiceCredentials:
    token: str = field(repr=False)
    tls: MutualTls | None = None

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.token):
            raise CredentialError(
                f"{TOKEN_VARIABLE} must be at least 16 visible ASCII characters without spaces"
            )

    @property
    def authorization(self) -> str:
        """The `authorization` metadata value a caller sends."""
        return f"Bearer {self.token}"

    @classmethod
    def of(
        cls,
        token: str | None,
        certificate: Path | None = None,
        private_key: Path | None = None,
        ca: Path | None = None,
    ) -> "ServiceCredentials":
        """The credential from its settings; refuses a missing token or a partial TLS set."""
        if not token:
            raise CredentialError(
                f"{TOKEN_VARIABLE} is not set: the services and the gateway need the same "
                "internal service token (e.g. `openssl rand -hex 32`)"
            )
        files = (certificate, private_key, ca)
        if all(path is None for path in files):
            return cls(token)
        if certificate is None or private_key is None or ca is None:
            raise CredentialError(f"mTLS needs all of {', '.join(TLS_VARIABLES)}")
        return cls(token, MutualTls.read(certificate, private_key, ca))
