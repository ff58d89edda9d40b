"""The demo seeds a finished campaign with stats (a reply on the timeline naming it) and a scheduled one."""

from __future__ import annotations

import pytest

from engagement.campaigns.services import campaign_stats
from engagement.models import Campaign, Interaction
from engagement.services.demo import DEMO_CAMPAIGN_DONE, DEMO_CAMPAIGN_SCHEDULED, demo_workspace_seed


@pytest.mark.django_db
def test_demo_campaigns(client):
    seed = demo_workspace_seed()
    demo_workspace_seed()
    done = Campaign.objects.get(workspace=seed.workspace, name=DEMO_CAMPAIGN_DONE)
    scheduled = Campaign.objects.get(workspace=seed.workspace, name=DEMO_CAMPAIGN_SCHEDULED)
    assert done.state == "completed"
    assert scheduled.state == "scheduled"
    assert scheduled.next_run_at is not None
    stats = campaign_stats(campaign=done)["total"]
    assert stats["targeted"] == stats["sent"] == stats["delivered"] == 2
    assert stats["replied"] >= 1

    message = Interaction.objects.filter(metadata__campaign_name=DEMO_CAMPAIGN_DONE).first()
    assert message is not None
    signed_in = client.post("/login/", {"username": "agent", "password": "demo-pass-123"})
    assert signed_in.status_code == 302  # through the sign-in page (django-axes needs the request)
    page = client.get(f"/conversations/{message.conversation_id}/").content.decode()
    assert f"campaign “{DEMO_CAMPAIGN_DONE}”" in page
