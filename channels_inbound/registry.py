"""One registry of webhook adapters keyed by provider name."""

from __future__ import annotations

import importlib
import pkgutil

from .base import WebhookAdapter

_ADAPTERS: dict[str, WebhookAdapter] = {}


def register(adapter_cls: type[WebhookAdapter]) -> type[WebhookAdapter]:
    _ADAPTERS[adapter_cls.provider] = adapter_cls()
    return adapter_cls


def adapter_for(provider: str) -> WebhookAdapter | None:
    return _ADAPTERS.get(provider)


def autodiscover() -> None:
    from . import providers

    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")
