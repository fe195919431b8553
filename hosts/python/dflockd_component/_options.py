"""The keyword arguments of `Lock`, `Semaphore` and `stats`, as the WIT
`list<setting>`: only what differs from the component's defaults is named."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence, Tuple, Union

from wasmtime.component import Record, Variant

from ._bindings import server, uint
from ._errors import error

if TYPE_CHECKING:
    import ssl


@dataclass(frozen=True)
class ClientCert:
    """A client certificate, for a server behind a mutual-TLS proxy.
    `private_key_pem` is a secret: it is never shown (not even by `repr`)."""

    cert_chain_pem: str
    private_key_pem: str = field(repr=False)


@dataclass(frozen=True)
class TLS:
    """TLS settings; `tls=True` is `TLS()`. TLS is done inside the component
    (rustls), and the server's certificate and name are always verified.

    - `ca_pem`: the CA certificates that verify the server, PEM text (a private
      CA). Default: the Mozilla root set bundled in the component.
    - `server_name`: the name the certificate must carry. Default: the server's
      host (an IP address is checked against the certificate's IP SANs).
    - `client_cert`: a `ClientCert`. Default: none.
    """

    ca_pem: str | None = None
    server_name: str | None = None
    client_cert: ClientCert | None = None


# Runtime aliases (not `X | Y`, which needs Python 3.10 outside annotations).
Servers = Sequence[Tuple[str, int]]
TLSOption = Union[bool, TLS, None]
# The Python client's custom routing: (key, number of servers) -> index.
ShardingStrategy = Callable[[str, int], int]


def settings(
    *,
    servers: Servers | None = None,
    acquire_timeout_s: int | None = None,
    lease_ttl_s: int | None = None,
    renew_ratio: float | None = None,
    server_index: int | None = None,
    auth_token: str | None = None,
    connect_timeout_s: float | None = None,
    tls: TLSOption = None,
    ssl_context: ssl.SSLContext | None = None,
) -> list[Variant]:
    """The WIT settings. Values the component checks (ranges, the key) are
    left to it, so that every host gives the same answer."""
    out = []
    if servers is not None:
        out.append(Variant("servers", [server(host, port) for host, port in servers]))
    if acquire_timeout_s is not None:
        out.append(Variant("acquire-timeout-s", uint("acquire_timeout_s", acquire_timeout_s, 64)))
    if lease_ttl_s is not None:
        out.append(Variant("lease-ttl-s", uint("lease_ttl_s", lease_ttl_s, 64)))
    if renew_ratio is not None:
        out.append(Variant("renew-ratio", float(renew_ratio)))
    if server_index is not None:
        out.append(Variant("server-index", uint("server index", server_index, 32)))
    if auth_token is not None:
        out.append(Variant("auth-token", auth_token))
    if connect_timeout_s is not None:
        out.append(Variant("connect-timeout-ms", _milliseconds("connect_timeout_s", connect_timeout_s)))
    if tls is not None and ssl_context is not None:
        raise error("invalid-argument", "pass tls= or ssl_context=, not both")
    tls_settings = _tls(tls) if ssl_context is None else _from_ssl_context(ssl_context)
    if tls_settings is not None:
        out.append(Variant("tls", tls_settings))
    return out


def _milliseconds(name: str, seconds: float) -> int:
    # The component takes whole ms and refuses 0: round a positive value up,
    # leave 0 and below for the component to refuse.
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise error("invalid-argument", f"{name} must be a finite number of seconds")
    return uint(name, max(0, math.ceil(seconds * 1000)), 64)


def _tls(tls: TLSOption) -> list[Variant] | None:
    if tls is None or tls is False:
        return None
    if tls is True:
        return []  # every default: the bundled roots, the host's name
    if not isinstance(tls, TLS):
        raise error("invalid-argument", f"tls must be True, False, None or a TLS(...), not {type(tls).__name__}")
    out = []
    if tls.ca_pem is not None:
        out.append(Variant("ca-pem", tls.ca_pem))
    if tls.server_name is not None:
        out.append(Variant("server-name", tls.server_name))
    if tls.client_cert is not None:
        out.append(Variant("client-cert", _client_cert(tls.client_cert)))
    return out


def _client_cert(cert: ClientCert) -> Record:
    record = Record()  # wasmtime-py lowers a record from its (dashed) attributes
    setattr(record, "cert-chain-pem", cert.cert_chain_pem)
    setattr(record, "private-key-pem", cert.private_key_pem)
    return record


def _from_ssl_context(context: ssl.SSLContext) -> list[Variant]:
    """The Python client's `ssl_context=`, as far as the component can honour it.

    TLS runs inside the component, not in Python's `ssl`, so only the CA
    certificates the context has loaded (`cafile=`/`cadata=`, or the system
    bundle of `create_default_context()`) carry over; with none loaded, the
    component's bundled roots verify. A client certificate in a context
    cannot be read back: pass `tls=TLS(client_cert=...)` instead.
    """
    import ssl

    if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise error(
            "invalid-argument",
            "ssl_context has certificate or host name checks off; the component always verifies both",
        )
    cas = context.get_ca_certs(binary_form=True)
    if not cas:
        return []
    return [Variant("ca-pem", "".join(ssl.DER_cert_to_PEM_cert(der) for der in cas))]


def object_settings(
    key: str,
    *,
    acquire_timeout_s: int | None,
    lease_ttl_s: int | None,
    servers: Servers | None,
    sharding_strategy: ShardingStrategy | None,
    renew_ratio: float | None,
    auth_token: str | None,
    connect_timeout_s: float | None,
    tls: TLSOption,
    ssl_context: ssl.SSLContext | None,
) -> list[Variant]:
    """The settings of a lock or semaphore. `sharding_strategy(key, n)` is the
    Python client's custom routing: its answer becomes the `server-index`."""
    index = None
    if sharding_strategy is not None:
        index = sharding_strategy(key, len(servers) if servers is not None else 1)
    return settings(
        servers=servers,
        acquire_timeout_s=acquire_timeout_s,
        lease_ttl_s=lease_ttl_s,
        renew_ratio=renew_ratio,
        server_index=index,
        auth_token=auth_token,
        connect_timeout_s=connect_timeout_s,
        tls=tls,
        ssl_context=ssl_context,
    )
