from __future__ import annotations

from rest_framework import serializers

from customers.models import Customer, Identity
from engagement.models import Interaction
from engagement.models.conversations import CallOutcome


class IdentitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["kind", "value", "verified", "first_channel", "first_seen_at", "last_seen_at"]


class CustomerSerializer(serializers.ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "display_name", "identities", "created_at", "updated_at"]


class InteractionSerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.kind", read_only=True, allow_null=True)
    channel_id = serializers.IntegerField(read_only=True, allow_null=True)
    call_outcome = serializers.ChoiceField(
        choices=[("", "Not a call, or no outcome yet"), *CallOutcome.choices],
        read_only=True,
        allow_blank=True,
    )

    class Meta:
        model = Interaction
        fields = [
            "id",
            "customer_id",
            "conversation_id",
            "channel",
            "channel_id",
            "kind",
            "direction",
            "body",
            "customer_address",
            "status",
            "status_changed_at",
            "provider_message_id",
            "error_code",
            "error_message",
            "segments",
            "call_outcome",
            "duration_seconds",
            "created_at",
        ]
        read_only_fields = fields


class MessageCreateSerializer(serializers.Serializer):
    channel_id = serializers.IntegerField(help_text="The channel to send on (see the console's channels).")
    customer_id = serializers.IntegerField(required=False, help_text="Send to this customer.")
    to = serializers.CharField(
        required=False, max_length=320, help_text="Or send to this address; the customer is found or created."
    )
    body = serializers.CharField(max_length=10_000, trim_whitespace=True)
    idempotency_key = serializers.CharField(
        required=False, max_length=150, help_text="A repeat with the same key returns the first message."
    )
    media_urls = serializers.ListField(
        child=serializers.URLField(max_length=1000),
        required=False,
        max_length=10,
        help_text="SMS only: public URLs of up to 10 media files, sent as an MMS.",
    )
    purpose = serializers.ChoiceField(
        choices=["transactional", "marketing"],
        default="transactional",
        help_text="Marketing needs the customer's opt-in; a send consent forbids comes back with status "
        '"blocked" and the reason in error_message.',
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("customer_id") and not attrs.get("to"):
            raise serializers.ValidationError("give customer_id or to")
        return attrs
