"""Files attached to interactions (email attachments and inline images, MMS media, webchat uploads)."""

from __future__ import annotations

from django.db import models

from .conversations import Interaction
from .tenancy import Workspace


class Attachment(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="attachments")
    # Stored through Django's storage API; served only through an authenticated console view.
    file = models.FileField(upload_to="attachments/%Y/%m/", max_length=500)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=150, blank=True, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    # Email inline parts are referenced from the HTML as cid:<content_id>.
    content_id = models.CharField(max_length=255, blank=True, default="")
    inline = models.BooleanField(default=False)
    source_url = models.URLField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename
