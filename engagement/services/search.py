"""One search box over customers and messages (issue 13 "Search"). Read-only selectors.

* :func:`customer_search` — customers by name or any identity value. An identity that *equals* the
  query once normalized (E.164 phone in the workspace's region, lower-cased email, or the raw value:
  external ids, visitor ids) ranks first; then fuzzy matches by ``pg_trgm``: a substring (``ILIKE``) or
  a word similarity of at least :data:`WORD_SIMILARITY_THRESHOLD` (typos: "Grce Hoper" finds
  "Grace Hopper"). Both are answered by the trigram GIN indexes ``customer_name_trgm`` and
  ``identity_value_trgm`` (``customers/migrations``), which need the ``pg_trgm`` extension.
* :func:`interaction_search` — interactions by PostgreSQL full-text search on ``body`` with the
  ``simple`` configuration (no stemming, no stop words: messages come in many languages) through the
  stored generated column ``engagement_interaction.search_vector`` (``to_tsvector('simple',
  COALESCE(body, ''))``, not a model field so ordinary reads never carry it; migration 0012) and its
  GIN index ``interaction_search_gin``. Every word of
  the query must match; the last one also as a prefix, so the box finds while the agent types. The
  best ``limit`` by ``ts_rank_cd`` are returned with a highlighted fragment (``ts_headline``). A word
  with :data:`COMMON_CANDIDATES` matches among the newest :data:`RECENT_WINDOW` interactions is ranked
  among those (the primary key walked backwards, the stored vector checked per row); otherwise every
  match up to :data:`ALL_MATCHES_CAP` is ranked (found through the GIN index). Ranking every match of a
  very common word over a million messages would cost seconds, and the newest matches are what an agent
  looks for. The plans are pinned with ``SET LOCAL`` planner switches: PostgreSQL cannot estimate a word
  absent from its statistics, nor a prefix (``bench/bench_search.py``: left to itself it walked a
  million rows backwards for a name nobody wrote, and fetched 50,000 rows for a common prefix).

Both are scoped to the workspace; merged-away customers are never returned (their identities and
timeline moved to the survivor).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from customers.identifiers import InvalidIdentifier, email_normalize, phone_normalize
from customers.models import Customer, Identity
from engagement.errors import ValidationFailed
from engagement.models import Interaction, Workspace

# pg_trgm's default word_similarity_threshold is 0.6, which misses a dropped letter in a short name
# ("grce" shares 3 of its 5 trigrams with "grace"); 0.45 still keeps unrelated names out.
WORD_SIMILARITY_THRESHOLD = 0.45
# Up to this many matches are all ranked; a word with more is ranked among its newest COMMON_CANDIDATES.
ALL_MATCHES_CAP = 5000
COMMON_CANDIDATES = 300
RECENT_WINDOW = 5000  # interactions (of every workspace): where a common word is looked for first
QUERY_MIN_LENGTH = 2
QUERY_MAX_LENGTH = 200
MAX_LIMIT = 50
FTS_CONFIG = "simple"
# ts_headline's markers: private-use characters that never occur in a message, replaced by <mark> once
# the fragment is HTML-escaped (so a message's own "<b>" stays text).
_START, _STOP = "\ue000", "\ue001"
_WORD_RE = re.compile(r"\w+", re.UNICODE)


class SearchQueryInvalid(ValidationFailed):
    code = "search_query_invalid"


def search_query_clean(query: str) -> str:
    """``query`` stripped; raises :class:`SearchQueryInvalid` (400, field ``q``) when it is shorter than
    :data:`QUERY_MIN_LENGTH` or longer than :data:`QUERY_MAX_LENGTH` characters."""
    cleaned = " ".join(query.split())
    if len(cleaned) < QUERY_MIN_LENGTH:
        raise SearchQueryInvalid(f"type at least {QUERY_MIN_LENGTH} characters", field="q")
    if len(cleaned) > QUERY_MAX_LENGTH:
        raise SearchQueryInvalid(f"at most {QUERY_MAX_LENGTH} characters", field="q")
    return cleaned


def tsquery_from_text(query: str) -> str:
    """A ``to_tsquery`` input for ``query``: its words (letters and digits, lower-cased) joined by
    ``&``, the last one a prefix (``:*``); "" when it has no word. Words are quoted lexemes, so no
    operator typed by the user reaches the parser."""
    words = [w.lower() for w in _WORD_RE.findall(query)][:16]
    if not words:
        return ""
    terms = [f"'{w}'" for w in words]
    terms[-1] += ":*"
    return " & ".join(terms)


def _highlight(fragment: str) -> SafeString:
    escaped = escape(fragment).replace(_START, "<mark>").replace(_STOP, "</mark>")
    return mark_safe(escaped)  # noqa: S308 - escaped above; only our own <mark> tags are added


# ---------------------------------------------------------------- customers


@dataclass(frozen=True)
class CustomerHit:
    customer: Customer
    identities: list[Identity]
    score: float
    exact: bool  # an identity equals the query


def _exact_values(query: str, *, region: str) -> list[str]:
    values = {query}
    if "@" in query:
        with contextlib.suppress(InvalidIdentifier):
            values.add(email_normalize(query))
    if sum(ch.isdigit() for ch in query) >= 3:
        with contextlib.suppress(InvalidIdentifier):
            values.add(phone_normalize(query, region=region))
    return sorted(values)


_CUSTOMER_SQL = """
WITH hits AS (
    SELECT i.customer_id AS id, 10.0::float8 AS score
      FROM customers_identity i
     WHERE i.workspace_id = %(ws)s AND i.value = ANY(%(exact)s)
    UNION ALL
    SELECT c.id, word_similarity(%(q)s, c.display_name)::float8
                 + CASE WHEN c.display_name ILIKE %(like)s THEN 1 ELSE 0 END
      FROM customers_customer c
     WHERE c.workspace_id = %(ws)s AND c.merged_into_id IS NULL
       AND (c.display_name ILIKE %(like)s OR c.display_name %%> %(q)s)
    UNION ALL
    SELECT i.customer_id, word_similarity(%(q)s, i.value)::float8
                 + CASE WHEN i.value ILIKE %(like)s THEN 1 ELSE 0 END
      FROM customers_identity i
     WHERE i.workspace_id = %(ws)s AND (i.value ILIKE %(like)s OR i.value %%> %(q)s)
)
SELECT id, max(score) AS score FROM hits GROUP BY id ORDER BY score DESC, id DESC LIMIT %(limit)s
"""


def _like_pattern(query: str) -> str:
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def customer_search(*, workspace: Workspace, query: str, limit: int = 10) -> list[CustomerHit]:
    """Customers of ``workspace`` matching ``query`` (see the module docstring), best first: exact
    identity matches, then substring matches, then by trigram word similarity (0..1). At most ``limit``
    (≤ :data:`MAX_LIMIT`). Raises :class:`SearchQueryInvalid` for a query that is too short or long.
    Three queries (threshold, hits, customers with their identities)."""
    query = search_query_clean(query)
    limit = max(1, min(limit, MAX_LIMIT))
    params: dict[str, Any] = {
        "ws": workspace.pk,
        "q": query,
        "like": _like_pattern(query),
        "exact": _exact_values(query, region=workspace.default_region),
        "limit": limit,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL: the threshold of the %> operator (index-backed), for this transaction only.
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)",
            [str(WORD_SIMILARITY_THRESHOLD)],
        )
        cursor.execute(_CUSTOMER_SQL, params)
        scored = [(int(pk), float(score)) for pk, score in cursor.fetchall()]
    if not scored:
        return []
    customers = Customer.objects.in_bulk([pk for pk, _ in scored])
    identities: dict[int, list[Identity]] = {}
    for identity in Identity.objects.filter(workspace=workspace, customer_id__in=customers).order_by(
        "-last_seen_at", "-id"
    ):
        identities.setdefault(identity.customer_id, []).append(identity)
    return [
        CustomerHit(customer=customers[pk], identities=identities.get(pk, []), score=score, exact=score >= 10)
        for pk, score in scored
        if pk in customers and customers[pk].merged_into_id is None
    ]


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class MessageHit:
    interaction: Interaction
    rank: float
    headline: SafeString  # HTML: the message's text escaped, matched words in <mark>


# Which interactions to rank, in steps whose plans are pinned (PostgreSQL cannot estimate how many rows
# a word absent from its statistics, or a prefix, matches; a wrong guess either walks the whole table
# backwards for a name nobody wrote, or fetches every row of a word everybody wrote):
# 1. the newest COMMON_CANDIDATES matches among the newest RECENT_WINDOW interactions (primary key walked
#    backwards, the stored vector checked per row): enough of them means a common word, done;
# 2. else every match from the GIN index (bitmap scan), up to ALL_MATCHES_CAP;
# 3. more than that (a word common in older messages only): the newest COMMON_CANDIDATES, walking back.
_RECENT_MATCHES_SQL = """
SELECT i.id FROM engagement_interaction i
 WHERE i.workspace_id = %(ws)s AND i.search_vector @@ to_tsquery('simple'::regconfig, %(tsq)s) {filters}
   AND i.id > (SELECT coalesce(max(id), 0) FROM engagement_interaction) - %(window)s
 ORDER BY i.id DESC
 LIMIT %(candidates)s
"""
_MATCHES_SQL = """
SELECT i.id FROM engagement_interaction i
 WHERE i.workspace_id = %(ws)s AND i.search_vector @@ to_tsquery('simple'::regconfig, %(tsq)s) {filters}
 LIMIT %(cap)s
"""
_NEWEST_MATCHES_SQL = """
SELECT i.id FROM engagement_interaction i
 WHERE i.workspace_id = %(ws)s AND i.search_vector @@ to_tsquery('simple'::regconfig, %(tsq)s) {filters}
 ORDER BY i.id DESC
 LIMIT %(candidates)s
"""
_RANK_SQL = """
WITH q AS (SELECT to_tsquery('simple'::regconfig, %(tsq)s) AS q),
best AS (
    SELECT i.id, i.body, ts_rank_cd(i.search_vector, q.q) AS rank
      FROM engagement_interaction i, q
     WHERE i.id = ANY(%(ids)s)
     ORDER BY rank DESC, i.id DESC
     LIMIT %(limit)s
)
SELECT b.id, b.rank,
       ts_headline('simple'::regconfig, b.body, q.q,
                   'StartSel=' || %(start)s || ', StopSel=' || %(stop)s
                   || ', MaxWords=30, MinWords=12, ShortWord=0')
  FROM best b, q
 ORDER BY b.rank DESC, b.id DESC
"""


def interaction_search(
    *,
    workspace: Workspace,
    query: str,
    limit: int = 20,
    channel_id: int | None = None,
    customer_id: int | None = None,
) -> list[MessageHit]:
    """Interactions of ``workspace`` whose body matches every word of ``query`` (the last as a prefix),
    best ranked first among all matches (up to :data:`ALL_MATCHES_CAP`), else among the newest
    :data:`COMMON_CANDIDATES`; optionally on one channel or of one customer. Each hit carries its
    interaction (with ``channel`` and ``customer``), its rank and a highlighted fragment. Raises
    :class:`SearchQueryInvalid` for a query too short, too long, or with no word in it. Five to eleven
    queries (most are planner settings)."""
    query = search_query_clean(query)
    tsq = tsquery_from_text(query)
    if not tsq:
        raise SearchQueryInvalid("the query has no word to look for", field="q")
    limit = max(1, min(limit, MAX_LIMIT))
    filters = []
    params: dict[str, Any] = {
        "ws": workspace.pk,
        "tsq": tsq,
        "candidates": COMMON_CANDIDATES,
        "limit": limit,
        "start": _START,
        "stop": _STOP,
    }
    if channel_id is not None:
        filters.append("AND i.channel_id = %(channel)s")
        params["channel"] = channel_id
    if customer_id is not None:
        filters.append("AND i.customer_id = %(customer)s")
        params["customer"] = customer_id
    where = " ".join(filters)
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL: these planner switches last until the end of this transaction only.
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(_RECENT_MATCHES_SQL.format(filters=where), {**params, "window": RECENT_WINDOW})
        ids = [int(row[0]) for row in cursor.fetchall()]
        if len(ids) < COMMON_CANDIDATES:
            cursor.execute("SET LOCAL enable_bitmapscan = on")
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute(_MATCHES_SQL.format(filters=where), {**params, "cap": ALL_MATCHES_CAP + 1})
            ids = [int(row[0]) for row in cursor.fetchall()]
            if len(ids) > ALL_MATCHES_CAP:
                cursor.execute("SET LOCAL enable_indexscan = on")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute(_NEWEST_MATCHES_SQL.format(filters=where), params)
                ids = [int(row[0]) for row in cursor.fetchall()]
        if not ids:
            return []
        cursor.execute(_RANK_SQL, {**params, "ids": ids})
        rows = [(int(pk), float(rank), str(headline or "")) for pk, rank, headline in cursor.fetchall()]
    if not rows:
        return []
    interactions = Interaction.objects.select_related("channel", "customer").in_bulk(
        [pk for pk, _, _ in rows]
    )
    return [
        MessageHit(interaction=interactions[pk], rank=rank, headline=_highlight(headline))
        for pk, rank, headline in rows
        if pk in interactions
    ]


@dataclass(frozen=True)
class SearchResults:
    query: str
    customers: list[CustomerHit]
    messages: list[MessageHit]
    searched_at: datetime | None = None


def workspace_search(
    *, workspace: Workspace, query: str, customers: bool = True, messages: bool = True, limit: int = 10
) -> SearchResults:
    """Both searches for the one box: customers and messages (either may be switched off), ``limit``
    of each. Raises :class:`SearchQueryInvalid` like them. A query without a word (only punctuation)
    finds customers by identity but no messages."""
    query = search_query_clean(query)
    customer_hits = customer_search(workspace=workspace, query=query, limit=limit) if customers else []
    message_hits: list[MessageHit] = []
    if messages and tsquery_from_text(query):
        message_hits = interaction_search(workspace=workspace, query=query, limit=limit)
    return SearchResults(query=query, customers=customer_hits, messages=message_hits)
