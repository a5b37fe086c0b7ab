"""Services a lower layer asks for by role, and the top package provides.

The layers import one way (instances <- models <- decomposition <- applications). Where a lower
layer needs a service only a higher one can give -- the instance generator's ``"lp"``
calibration needs the model's exact LP solve -- it asks this registry for the role's provider,
and the package's top (``meio/__init__.py``) names the provider, importing the higher layer
only when the service is first used. A user may register a provider of their own. This module
imports nothing else of meio.

>>> provide("example", len)
>>> provider("example")("abc")
3
"""

from __future__ import annotations

from collections.abc import Callable

_PROVIDERS: dict[str, Callable] = {}


def provide(role: str, service: Callable) -> None:
    """Make ``service`` the provider of ``role`` (a later call replaces an earlier one)."""
    _PROVIDERS[role] = service


def provider(role: str) -> Callable:
    """The provider of ``role``; a ``LookupError`` naming the role when there is none."""
    try:
        return _PROVIDERS[role]
    except KeyError:
        raise LookupError(f"no provider of {role!r} is registered") from None
