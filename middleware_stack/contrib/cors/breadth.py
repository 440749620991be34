"""Is a credentialed origin pattern too broad? Judged by what it matches, not its text.

With ``allow_credentials``, an origin pattern that admits a host anyone can register
(a public suffix's whole namespace: ``https://*.com``, ``https://*.github.io``) or any
host at all (``.*``) lets every such site read signed-in responses. A regex's text is no
guide (``^https?://.*$``, ``^https://[^.]+\\.com$``, ``(?i)HTTPS://.*`` all say the same),
so each pattern is tried at build time on hostile origins: a host that no project owns,
under public suffixes (single-label TLDs, multi-label registries such as ``co.uk``, and
hosting platforms whose subdomains belong to their users), over http and https, with
and without a port. A pattern that admits any of them is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["PUBLIC_SUFFIXES", "first_hostile_match", "hostile_origins"]

#: Public suffixes tried: ICANN TLDs and second-level registries, and the common
#: platforms whose subdomains are handed to their users (the Public Suffix List's
#: private section). Not the whole list: every pattern that admits "arbitrary hosts"
#: admits these too, and the common mistakes (``*.com``, ``*.github.io``) are named.
PUBLIC_SUFFIXES: Final = (
    # generic and country TLDs
    "com", "net", "org", "io", "dev", "app", "co", "ai", "info", "biz", "xyz", "site",
    "online", "me", "tv", "us", "uk", "de", "fr", "nl", "ru", "cn", "jp", "br", "in",
    "au", "ca", "eu", "ch", "se", "no", "es", "it", "pl", "xn--p1ai",
    # second-level registries
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "co.jp", "ne.jp", "com.br",
    "com.cn", "co.in", "co.nz", "co.za", "com.mx", "com.tr", "co.kr", "com.sg", "eu.org",
    # platforms that give each user a subdomain
    "github.io", "gitlab.io", "herokuapp.com", "pages.dev", "workers.dev", "vercel.app",
    "netlify.app", "web.app", "firebaseapp.com", "appspot.com", "azurewebsites.net",
    "cloudfront.net", "s3.amazonaws.com", "blogspot.com", "fly.dev", "onrender.com",
    "glitch.me", "ngrok.io", "ngrok-free.app", "repl.co", "trycloudflare.com",
)  # fmt: skip

#: The host label of the probes: a name no project's own origins will contain, then the
#: same without hyphens (for ``\\w+``) and a short one (for ``[a-z]{1,3}``).
PROBE_LABEL: Final = "cors-probe-attacker"
PROBE_LABELS: Final = (PROBE_LABEL, "corsprobeattacker", "q7")
_PORTS: Final = ("", ":8443", ":3000", ":8080")


def hostile_origins(port: str | None = None) -> Iterator[str]:
    """Serialised origins of sites an attacker can own (``port``: only that one)."""
    ports = _PORTS if port is None else (port,)
    for suffix in PUBLIC_SUFFIXES:
        for scheme in ("https", "http"):
            for p in ports:
                for label in PROBE_LABELS:
                    yield f"{scheme}://{label}.{suffix}{p}"
                yield f"{scheme}://www.{PROBE_LABEL}.{suffix}{p}"


def first_hostile_match(admits: Callable[[str], object], port: str | None = None) -> str | None:
    """The first hostile origin ``admits`` lets in, or None if it refuses them all."""
    for origin in hostile_origins(port):
        if admits(origin):
            return origin
    return None
