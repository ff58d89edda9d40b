"""SMS opt-out/opt-in/help keywords: what an inbound SMS asks for, and the consent change it makes.

Deciding, not sending: :func:`sms_keyword_decide` records the consent change (the ledger is this app's)
and returns a :class:`KeywordDecision` with the reply text; the inbound service that called it
(``engagement/services/timeline.py:interaction_record_inbound``) sends that reply with the idempotency
key ``keyword:<interaction id>``.

What counts as a keyword (FCC 24-24, 47 CFR 64.1200(a)(10): revocation "by any reasonable means", and
the words "stop, quit, end, revoke, opt out, cancel, unsubscribe" in a reply are always a revocation):

* The message is compared after :func:`keyword_normalize`: Unicode NFKC (fullwidth letters are
  ASCII), case folded, accents dropped (``ARRÊT`` is ``ARRET``), apostrophes dropped, every other
  character that is not a letter or digit (punctuation, emoji, symbols) read as a space, whitespace
  collapsed. ``Stop.``, ``STOP!``, ``stop 🛑`` are ``STOP``.
* A keyword may be written in several words (``opt out``, ``opt-out``, ``stop all``, ``dar de baja``):
  the words are compared joined (``OPTOUT``). Courtesy words around it (``please``, ``thanks``, ``me``,
  ``por favor``, ``s'il vous plaît``, ``bitte``…) and a repeated keyword (``STOP STOP``) are ignored.
  ``YES`` is the exception: only the bare word opts in, since "yes please" usually answers a question.
* Anything else is not a keyword, but a message that contains an opt-out word inside a sentence
  ("please stop calling me at work") is a *possible revocation*: it changes no consent, and the
  interaction carries ``metadata["possible_revocation"]`` so the console shows it to an agent.

Each keyword message gets exactly one reply, and a keyword that changes nothing (a second STOP while
opted out, a second START while opted in) records nothing and gets none. The message itself stays on
the timeline like any other. When the channel's provider answers keywords itself
(``Channel.config["provider_handles_keywords"]``, e.g. a Twilio long code with default opt-out
handling) we record the consent change and return no reply.

Keyword lists and their sources (extend them here; every language's words are matched on every
message, since a customer's language is not known in advance):

* English opt-out STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT; opt-in START, UNSTOP,
  YES; help HELP, INFO: Twilio's default keywords (twilio.com/docs/messaging/tutorials/advanced-opt-out,
  shared/PROTOCOLS.md section E) and the FCC 24-24 words above. REMOVE, OPT-OUT, and the Canadian
  French ARRET and TD: AWS End User Messaging's required opt-out keywords
  (docs.aws.amazon.com/sms-voice/latest/userguide/keywords-required.html).
* Spanish ALTO (opt-out) and AYUDA (help): Twilio's requirements for Spanish-language short codes
  (twilio.com/help/faq/short-codes/what-are-the-requirements-for-a-spanish-language-short-code).
  PARAR, BAJA, CANCELAR, DETENER, DESUSCRIBIR, "dar de baja": the words Spanish-language opt-out
  instructions use (MMA guidance quoted by carriers); chosen by us, no single authoritative list.
* French ARRET/ARRÊT (AWS list above), ARRETER, DESABONNER/DÉSABONNER, DESINSCRIRE, AIDE (help): the
  Canadian French forms carriers ask for (CWTA); the verbs are our choice.
* German STOPP, ABMELDEN, ABBESTELLEN, KUENDIGEN/KÜNDIGEN, ENDE, HILFE (help); Portuguese PARAR, SAIR,
  CANCELAR, DESCADASTRAR, REMOVER, AJUDA (help): our choice (the imperative and infinitive forms
  German- and Portuguese-language opt-out instructions use); no single authoritative list.
* Opt-in is English only (START, UNSTOP, YES): re-subscribing on a word we guessed is worse than asking
  the customer to send START.
"""

from __future__ import annotations

import enum
import logging
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction

from .consent import consent_channel_state, consent_record
from .lookup import customer_follow_merges
from .models import ConsentChannel, ConsentSource, ConsentStatus, Customer

if TYPE_CHECKING:
    from engagement.models import Interaction

logger = logging.getLogger(__name__)


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def _forms(*words: str) -> list[str]:
    """Keyword forms as they are compared: normalized, words joined."""
    return ["".join(keyword_normalize(w).split()) for w in words]


# ' and its typographic look-alikes: U+2019, U+02BC, U+0060, U+00B4.
APOSTROPHES = frozenset("'\u2019\u02bc\u0060\u00b4")


def keyword_normalize(text: str) -> str:
    """``text`` as keywords are compared: NFKC, case folded, accents and apostrophes dropped, every
    character that is not a letter or digit read as a space, upper case, single spaces, trimmed.

    ``keyword_normalize("  Stop. 🛑")`` is ``"STOP"``; ``keyword_normalize("Opt-out!")`` is
    ``"OPT OUT"``; ``keyword_normalize("ARRÊT")`` is ``"ARRET"``. Pure; journeys reuse it for their own
    reply keywords.
    """
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    out: list[str] = []
    for ch in folded:
        category = unicodedata.category(ch)
        if category in ("Mn", "Cf") or ch in APOSTROPHES:
            # Accents, variation selectors, zero-width joiners, apostrophes ("don't" is "DONT").
            continue
        out.append(ch if category[0] in "LN" else " ")
    return " ".join("".join(out).split()).upper()


KEYWORDS: dict[str, Keyword] = {
    # English: Twilio defaults, FCC 24-24, AWS required list.
    **dict.fromkeys(
        _forms(
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "REMOVE",
            "OPT ME OUT",
        ),
        Keyword.OPT_OUT,
    ),
    # Canadian French (AWS list, CWTA), French.
    **dict.fromkeys(_forms("ARRET", "TD", "ARRETER", "DESABONNER", "DESINSCRIRE"), Keyword.OPT_OUT),
    # Spanish (Twilio Spanish short codes: ALTO), Portuguese.
    **dict.fromkeys(
        _forms(
            "ALTO",
            "PARAR",
            "BAJA",
            "CANCELAR",
            "DETENER",
            "DESUSCRIBIR",
            "DAR DE BAJA",
            "DARME DE BAJA",
            "SAIR",
            "DESCADASTRAR",
            "REMOVER",
        ),
        Keyword.OPT_OUT,
    ),
    # German.
    **dict.fromkeys(
        _forms("STOPP", "ABMELDEN", "ABBESTELLEN", "KUENDIGEN", "KÜNDIGEN", "ENDE"), Keyword.OPT_OUT
    ),
    **dict.fromkeys(_forms("START", "UNSTOP", "YES"), Keyword.OPT_IN),
    **dict.fromkeys(_forms("HELP", "INFO", "AYUDA", "AIDE", "HILFE", "AJUDA"), Keyword.HELP),
}
# Only the bare word counts ("yes please" answers a question; it is no opt-in).
BARE_ONLY = frozenset(_forms("YES"))

# Courtesy words that may surround a keyword ("Stop please", "unsubscribe me", "Baja por favor").
FILLERS: tuple[tuple[str, ...], ...] = tuple(
    tuple(keyword_normalize(f).split())
    for f in (
        "please", "pls", "plz", "plse", "now", "thanks", "thank you", "thx", "ty", "ok", "okay", "me",
        "por favor", "gracias", "svp", "s'il vous plait", "merci", "bitte", "danke", "obrigado",
        "obrigada", "moi",
    )
)  # fmt: skip
# A keyword is a short message; a longer one is a sentence (looked at for a possible revocation only).
MAX_KEYWORD_WORDS = 6

# Words and phrases that, inside a sentence, may mean "stop contacting me": the message is flagged
# for an agent (FCC 24-24: revocation by any reasonable means), never acted on automatically. Words
# that are common in ordinary sentences ("end", "cancel my appointment", "alto") are left out.
REVOCATION_WORDS = frozenset(
    _forms(
        "STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT", "REVOKE", "ARRET", "ARRETER", "DESABONNER",
        "DESINSCRIRE", "STOPP", "ABMELDEN", "ABBESTELLEN", "DESUSCRIBIR", "DESCADASTRAR", "DETENER",
    )
)  # fmt: skip
REVOCATION_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    tuple(keyword_normalize(p).split())
    for p in (
        "opt out", "opt me out", "un subscribe", "do not text", "dont text", "do not contact", "dont contact",
        "do not message", "dont message", "leave me alone", "remove me", "take me off", "no more texts",
        "no more messages", "dar de baja", "darme de baja",
    )
)  # fmt: skip

OPT_OUT_REPLY = "{name}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
OPT_IN_REPLY = "{name}: you are subscribed again. Reply STOP to unsubscribe, HELP for help."
HELP_REPLY_DEFAULT = "{name}: reply STOP to unsubscribe."


@dataclass(frozen=True)
class KeywordMatch:
    """What a message body says, read without the database.

    ``keyword``: the keyword it consists of, or None. ``possible_revocation``: not a keyword, but it
    contains an opt-out word or phrase (``term``, normalized) inside a sentence. ``normalized``: the
    body after :func:`keyword_normalize`.
    """

    keyword: Keyword | None
    normalized: str
    possible_revocation: bool = False
    term: str = ""


def _strip_fillers(words: list[str]) -> list[str]:
    changed = True
    while changed and words:
        changed = False
        for filler in FILLERS:
            n = len(filler)
            if len(words) > n and tuple(words[:n]) == filler:
                words, changed = words[n:], True
            elif len(words) > n and tuple(words[-n:]) == filler:
                words, changed = words[:-n], True
    return words


def _revocation_term(words: list[str]) -> str:
    for i in range(len(words)):
        for phrase in REVOCATION_PHRASES:
            if tuple(words[i : i + len(phrase)]) == phrase:
                return " ".join(phrase)
    for word in words:
        if word in REVOCATION_WORDS:
            return word
    return ""


def keyword_match(body: str) -> KeywordMatch:
    """Read ``body`` as a keyword message (module docstring for the rules). Pure."""
    normalized = keyword_normalize(body)
    words = normalized.split()
    if not words:
        return KeywordMatch(None, normalized)
    if len(words) <= MAX_KEYWORD_WORDS:
        core = _strip_fillers(list(words))
        # A repeated keyword ("STOP STOP") is the keyword.
        candidate = "".join(w for i, w in enumerate(core) if i == 0 or w != core[i - 1])
        keyword = KEYWORDS.get(candidate)
        if keyword is not None and (candidate not in BARE_ONLY or len(set(words)) == 1):
            return KeywordMatch(keyword, normalized)
    term = _revocation_term(words)
    return KeywordMatch(None, normalized, possible_revocation=bool(term), term=term)


def keyword_classify(body: str) -> Keyword | None:
    """The keyword ``body`` consists of, or None."""
    return keyword_match(body).keyword


@dataclass(frozen=True)
class KeywordDecision:
    """What an inbound SMS asked for and what was done about it.

    ``keyword``: the keyword, or None (then at most ``possible_revocation`` is set). ``consent_status``:
    the status recorded in the ledger (``opted_out``/``opted_in``), None when nothing was recorded (HELP,
    a repeat, no keyword). ``reply``: the text the caller sends back (purpose "compliance"), None when
    nothing is to be sent (a repeat, or the provider answers keywords itself). ``repeat``: the keyword
    changed nothing (a second STOP). ``possible_revocation``/``term``: see :class:`KeywordMatch`.
    """

    keyword: Keyword | None
    consent_status: str | None = None
    reply: str | None = None
    repeat: bool = False
    possible_revocation: bool = False
    term: str = ""


def sms_keyword_decide(*, interaction: Interaction) -> KeywordDecision | None:
    """Decide what an inbound SMS asks for; record the consent change it makes; return the reply.

    Precondition: runs inside ``interaction_record_inbound``'s transaction, after ``interaction`` is
    stored. Returns None for anything but an inbound SMS. On a keyword the customer row is locked, so
    two STOPs processed at once record one opt-out and get one reply between them. Sends nothing:
    the caller sends ``reply`` (idempotency key ``keyword:<interaction id>``).
    """
    channel = interaction.channel
    if channel is None or channel.kind != "sms" or interaction.direction != "inbound":
        return None
    match = keyword_match(interaction.body)
    keyword = match.keyword
    if keyword is None:
        return KeywordDecision(None, possible_revocation=match.possible_revocation, term=match.term)
    workspace = channel.workspace
    silent = bool(channel.config.get("provider_handles_keywords"))
    if keyword == Keyword.HELP:
        reply = workspace.help_text.strip() or HELP_REPLY_DEFAULT.format(name=workspace.name)
        return KeywordDecision(keyword, reply=None if silent else reply)
    with transaction.atomic(savepoint=False):
        customer = customer_follow_merges(customer=interaction.customer)
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").first()
        state = consent_channel_state(customer=customer, channel=ConsentChannel.SMS)
        opted_out = keyword == Keyword.OPT_OUT
        if opted_out:
            # A STOP is already in force and nothing was allowed since: every purpose stays blocked.
            repeat = (
                state[""] == ConsentStatus.OPTED_OUT
                and state["transactional"] == ConsentStatus.OPTED_OUT
                and state["marketing"] != ConsentStatus.OPTED_IN
            )
        else:
            repeat = state[""] == ConsentStatus.OPTED_IN and state["transactional"] != ConsentStatus.OPTED_OUT
        if repeat:
            return KeywordDecision(keyword, repeat=True)
        status = ConsentStatus.OPTED_OUT if opted_out else ConsentStatus.OPTED_IN
        consent_record(
            customer=customer,
            channel=ConsentChannel.SMS,
            status=status,
            source=ConsentSource.SMS_KEYWORD,
            evidence={
                "interaction_id": interaction.pk,
                "channel_id": channel.pk,
                "provider_message_id": interaction.provider_message_id,
                "body": interaction.body.strip(),
            },
            occurred_at=interaction.created_at,
            address=interaction.customer_address,
        )
    reply = (OPT_OUT_REPLY if opted_out else OPT_IN_REPLY).format(name=workspace.name)
    return KeywordDecision(keyword, consent_status=status, reply=None if silent else reply)
