"""One registry of senders keyed by (channel kind, provider). The core never imports a provider by name."""

from __future__ import annotations

import importlib
import pkgutil

from engagement.models import Channel

from .base import OutboundSender

_SENDERS: dict[tuple[str, str], OutboundSender] = {}


def register(sender_cls: type[OutboundSender]) -> type[OutboundSender]:
    instance = sender_cls()
    for kind in sender_cls.channel_kinds:
        _SENDERS[(kind, sender_cls.provider)] = instance
    return sender_cls


def sender_for(channel: Channel) -> OutboundSender:
    try:
        return _SENDERS[(channel.kind, channel.provider)]
    except KeyError:
        raise LookupError(f"no outbound sender for {channel.kind}/{channel.provider}") from None


def autodiscover() -> None:
    from . import providers

    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")
