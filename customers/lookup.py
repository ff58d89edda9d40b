"""The one merge-following lookup of a customer by id.

Every id that reaches us from outside the request's own lookup (a signed unsubscribe link, a provider
callback carrying our interaction id, an API or console URL, a Celery task argument, a queued message,
a customer object held since before a merge) may name a customer that has since been merged away. A
merged-away row is a tombstone pointing at its survivor (``Customer.merged_into``; see
``customers/merging.py``); it owns nothing, so anything recorded on it is lost to the survivor. Such ids
go through :func:`customer_resolve_current`, which follows the ``merged_into`` chain to the live
customer in one query (a recursive CTE), and customer objects through :func:`customer_follow_merges`,
which costs nothing for a customer that was never merged away.

This module is a leaf of ``customers`` (it imports only the models), so the consent ledger and every
other module can use it.
"""

from __future__ import annotations

from engagement.errors import NotFound

from .models import Customer

# Merges chain (A into B, later B into C); a chain longer than this is a data error, not a workload.
MAX_MERGE_HOPS = 64


class CustomerNotFound(NotFound):
    code = "customer_not_found"
    title = "No such customer"


_CHAIN_SQL = f"""
WITH RECURSIVE chain (id, merged_into_id, depth) AS (
    SELECT id, merged_into_id, 0 FROM {Customer._meta.db_table}
     WHERE id = %s AND workspace_id = %s
    UNION ALL
    SELECT c.id, c.merged_into_id, chain.depth + 1
      FROM {Customer._meta.db_table} c JOIN chain ON c.id = chain.merged_into_id
     WHERE c.workspace_id = %s AND chain.depth < {MAX_MERGE_HOPS}
)
SELECT c.* FROM chain JOIN {Customer._meta.db_table} c ON c.id = chain.id
 ORDER BY chain.depth DESC LIMIT 1
"""  # noqa: S608 -- only the model's own table name is interpolated; values are parameters


def customer_resolve_current(*, workspace_id: int, customer_id: int) -> Customer:
    """The live customer ``customer_id`` stands for in the workspace: itself, or the survivor at the end
    of its ``merged_into`` chain. One query.

    Scoped to ``workspace_id`` at every hop, so an id from another workspace is not found. An erased
    customer is returned as it is (callers decide what an erased customer may do).
    Raises :class:`CustomerNotFound` (404) when no such customer exists in the workspace.
    """
    rows = list(Customer.objects.raw(_CHAIN_SQL, [customer_id, workspace_id, workspace_id]))
    if not rows:
        raise CustomerNotFound(f"no customer {customer_id} in this workspace")
    return rows[0]


def customer_resolve_current_or_none(*, workspace_id: int, customer_id: int) -> Customer | None:
    """:func:`customer_resolve_current`, with None instead of :class:`CustomerNotFound`."""
    try:
        return customer_resolve_current(workspace_id=workspace_id, customer_id=customer_id)
    except CustomerNotFound:
        return None


def customer_follow_merges(*, customer: Customer) -> Customer:
    """``customer`` itself when it is live (no query), else the survivor it was merged into.

    For code handed a ``Customer`` row rather than an id (a queued message's customer, a caller of the
    consent ledger): the row's own ``merged_into_id`` decides, so the row should have been read in the
    caller's transaction.
    """
    if customer.merged_into_id is None:
        return customer
    return customer_resolve_current(workspace_id=customer.workspace_id, customer_id=customer.pk)
