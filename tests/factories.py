"""factory_boy factories for the models tests need."""

from __future__ import annotations

from typing import Any, cast

import factory
from django.contrib.auth import get_user_model

from engagement.models import Channel, Membership, Role, Workspace
from tests.fakes.twilio_server import FakeTwilio


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-123")


def workspace_create(**kwargs: Any) -> Workspace:
    workspace: Any = WorkspaceFactory(**kwargs)
    return cast(Workspace, workspace)


def member(workspace: Workspace, role: str = Role.AGENT) -> Any:
    user: Any = UserFactory()
    Membership.objects.create(workspace=workspace, user=user, role=role)
    return user


_numbers = iter(range(10_000))


def twilio_channel(workspace: Workspace, fake: FakeTwilio, kind: str = "sms", **config: Any) -> Channel:
    """A Twilio channel (SMS, or ``kind="voice"``) whose SDK calls go to the fake Twilio server."""
    return Channel.objects.create(
        workspace=workspace,
        kind=kind,
        provider="twilio",
        name=kind.upper(),
        address=f"+1415555{next(_numbers):04d}",
        config={
            "account_sid": fake.account_sid,
            "auth_token": fake.auth_token,
            "api_base_url": fake.url,
            **config,
        },
    )


# ---------------------------------------------------------------- the single customer view

_addresses = iter(range(10_000))


def channel_create(workspace: Workspace, kind: str = "sms", **kwargs: Any) -> Channel:
    """A sandbox channel of ``kind`` (no provider credentials needed)."""
    n = next(_addresses)
    address = {"sms": f"+1415666{n:04d}", "voice": f"+1415777{n:04d}", "email": f"inbox{n}@example.com"}
    return Channel.objects.create(
        workspace=workspace,
        kind=kind,
        provider=kwargs.pop("provider", "sandbox"),
        name=kwargs.pop("name", f"{kind} {n}"),
        address=kwargs.pop("address", address.get(kind, f"widget-{n}")),
        **kwargs,
    )


def customer_create(
    workspace: Workspace, *identifiers: tuple[str, str], name: str = "", **fields: Any
) -> Any:
    """A customer owning ``identifiers`` (``("phone", "+1415…")``...), created through resolution."""
    from customers.models import Customer
    from customers.services import Identifier, customer_resolve_identifiers

    if not identifiers:
        return Customer.objects.create(workspace=workspace, display_name=name, **fields)
    resolution = customer_resolve_identifiers(
        workspace=workspace, identifiers=[Identifier(k, v) for k, v in identifiers], display_name=name
    )
    customer = resolution.customer
    if fields:
        for key, value in fields.items():
            setattr(customer, key, value)
        customer.save()
    return customer
