"""Where CRLs, OCSP responders and caIssuers files are really fetched from.

A site with no network path to the CAs mirrors their repositories (a local web server, a
proxy) and maps each repository's URL prefix to its mirror. The certificates keep naming
the CAs' own URLs; only the fetch goes to the mirror, and the data fetched is checked as
if it came from the CA (signatures, issuer), so a mirror cannot vouch for anything.
"""

from __future__ import annotations

from collections.abc import Mapping


def _fold(url: str) -> str:
    """``url`` with its scheme and host in lower case: they are case-insensitive, and
    certificate parsers do not all keep the case the CA wrote."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return f"{scheme.lower()}://{rest[:cut].lower()}{rest[cut:]}"


class Mirrors:
    """URL prefix → mirror prefix; the longest matching prefix wins."""

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        pairs = [(_fold(k.rstrip("/")), v.rstrip("/")) for k, v in (mapping or {}).items()]
        for prefix, _ in pairs:
            if "://" not in prefix:
                raise ValueError(f"mirror prefix {prefix!r} is not a URL prefix")
        self._pairs = sorted(pairs, key=lambda p: len(p[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def __call__(self, url: str) -> str:
        """The URL to fetch ``url`` from: its mirror's, or ``url`` itself."""
        url = _fold(url)
        for prefix, mirror in self._pairs:
            # Only at a path boundary: "http://ca.example" must not match
            # "http://ca.example.evil/".
            if url == prefix or url.startswith((prefix + "/", prefix + "?")):
                return mirror + url[len(prefix) :]
        return url
