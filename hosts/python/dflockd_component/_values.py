"""The plain values the wrapper hands out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, repr=False)
class Grant:
    """A grant from the server. `token` is a secret (whoever has it can
    release or renew the lock): the repr shows only its first 8 characters."""

    token: str
    fence: int
    lease: int

    def __repr__(self) -> str:
        return f"Grant(token='{self.token[:8]}...', fence={self.fence}, lease={self.lease})"


@dataclass(frozen=True)
class Loss:
    """A lease lost while held: the WIT `loss-cause` (`"connection-lost"`,
    `"renewal-refused"`, ...), what was seen (redacted), and the grant's fence."""

    key: str
    cause: str
    detail: str
    fence: int
