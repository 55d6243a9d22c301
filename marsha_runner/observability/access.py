"""Who may read ``/metrics``: a bearer token, or a client from an allowed network.

``METRICS_TOKEN`` (Prometheus' ``authorization: {credentials: …}``) and
``METRICS_ALLOWED_NETWORKS`` (CIDRs, loopback by default) are both accepted when set. The
network is the direct peer's address: ``X-Forwarded-For`` is never read (a client sets it),
so behind a proxy allow the proxy's network or use the token.
"""

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(cidrs: tuple) -> tuple:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr)


def metrics_access_allowed(*, client_ip: str | None, authorization: str | None) -> bool:
    token = settings.METRICS_TOKEN
    if token and authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return True
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(
        address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))
    )
