"""The one error type of the wrapper."""

from __future__ import annotations

from collections.abc import Iterable


class DflockdError(Exception):
    """Every failure of the component, and of the wrapper around it.

    `kind` is the WIT `error` case (`"timeout"`, `"auth"`, `"lock-lost"`,
    `"invalid-argument"`, `"connection"`, `"server"`, ...), plus `"trap"` when
    the component itself failed (its instance is then unusable). `detail` is
    the case's text, if any; for `lock-lost`, `cause` is the WIT `loss-cause`.
    Neither ever holds an auth token or a whole lock token.
    """

    def __init__(self, kind: str, detail: str = "", cause: str | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.cause = cause
        parts = [kind] + [p for p in (cause, detail) if p]
        super().__init__(": ".join(parts))

    def __repr__(self) -> str:
        return f"DflockdError({str(self)!r})"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Removes known secrets from `text`.

    The component already keeps them out of its errors; this is a second
    guard, since an error message tends to end up in a log.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
