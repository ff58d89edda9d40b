"""Outbound webhooks (Standard Webhooks, https://www.standardwebhooks.com/).

- ``catalog.py``: the public event types and their payloads, built from domain events.
- ``ssrf.py``: which targets may be called, resolved once per delivery.
- ``services.py``: endpoints (create, change, enable, delete), the listener that records deliveries,
  replays, and the read side the console and the API use.
- ``delivery.py``: the delivery worker: claim due rows, sign, send, record, retry, disable.
- ``tasks.py``: the Celery task beat runs (``webhooks_deliver_due``).
"""
