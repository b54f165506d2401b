"""The classifier's vocabulary: general English verbs and nouns per category, the phrases it looks for
in descriptions, and the schema words it knows. No tool names: the rules must work on unseen servers."""

from __future__ import annotations

import re

from generator.catalog.models import Category

READ, WRITE, EXECUTE, DESTRUCTIVE, FINANCIAL = (
    Category.READ,
    Category.WRITE,
    Category.EXECUTE,
    Category.DESTRUCTIVE,
    Category.FINANCIAL,
)


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


VERBS: dict[Category, str] = {
    READ: """get gets list read search find fetch describe show view lookup retrieve check inspect count
        explain analyze analyse summarize summarise browse scrape crawl extract resolve whoami ping compare
        diff preview estimate calculate compute convert parse suggest recommend think snapshot screenshot
        watch monitor poll wait explore discover detect identify lint echo translate query export
        return returns lists gets shows retrieves fetches searches finds reads navigate goto go see visit
        validate verify audit scan trace research ask answer review measure
        sample load print display peek tail head look understand learn locate fuzzy
        format map scroll aggregate rank rerank sort filter compress decompress encode decode
        hash screenshot status info health docs""",
    WRITE: """create add new update edit set put post write insert upsert modify patch rename move copy
        upload download save send comment reply assign tag label star fork enable disable configure
        setup register invite publish open close archive unarchive restore import append attach link
        connect subscribe
        unsubscribe mark fill type click select drag press store remember record submit sync share
        generate draft approve change replace finalize transfer switch tick toggle init initialize make
        duplicate
        clone star unstar follow unfollow pin unpin react resize focus emulate throttle
        lock unlock mute unmute rate vote note annotate reopen transition swap push
        notify email handle dialog accept dismiss choose
        prepare feedback report enqueue queue refresh reload act promote hover place""",
    EXECUTE: """run exec execute eval evaluate invoke call trigger deploy start stop restart launch build
        spawn apply scale replay dispatch rerun retry cancel shell bash rollout rollback
        upgrade downgrade reboot provision migrate compile test redeploy pause resume suspend wake
        install simulate process forward sql shutdown""",
    DESTRUCTIVE: """delete remove rm del drop destroy purge truncate wipe erase kill terminate uninstall
        revoke reset unlink clear flush discard prune evict ban overwrite expunge nuke obliterate shred
        empty cleanup clean forget rotate deprovision teardown decommission recreate reimage reformat""",
    FINANCIAL: """refund pay charge purchase buy payout withdraw deposit bill invoice
        tip donate sell trade""",
}

FINANCIAL_NOUNS = words("""payment payments refund refunds invoice invoices charge charges payout payouts
    subscription subscriptions price prices coupon coupons discount promotion balance transaction
    transactions money funds fund wallet billing dispute disputes paymentintent paymentintents paymentlink
    paymentlinks credit credits order orders purchase purchases tax cart plan plans transfer transfers
    bill bills journal journals ledger expense expenses deposit deposits receipt receipts
    trade trades""")
"""Objects whose creation, change or removal moves money or creates a billing obligation."""

VERB_CATEGORY: dict[str, Category] = {}
for _category in (READ, WRITE, EXECUTE, DESTRUCTIVE, FINANCIAL):
    for _word in VERBS[_category].split():
        VERB_CATEGORY.setdefault(_word, _category)

TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
WORD_RE = re.compile(r"[a-z][a-z'-]*")

DESC_LEAD_RE = re.compile(
    r"^(?:(?:this|the) tool |tool (?:that |to |for )|a tool (?:that |to |for )|use (?:this )?(?:tool )?to |"
    r"use this when you (?:need|want) to |allows? (?:you |the user |users |agents? )?to |lets (?:you )?|"
    r"used to |you can |helps? (?:you )?(?:to )?|will |can |should |must |please |mcp tool to |"
    r"tool: |function to |endpoint to |api to |\W+)+",
)

DESTRUCTIVE_PHRASES = re.compile(
    r"\b(?:permanently|irreversibl\w*|cannot be undone|can't be undone|can not be undone|not reversible|"
    r"(?:will|this) (?:delete|remove|destroy|erase|wipe|drop|overwrite)s?|deletes? (?:the|a|an|all|one|"
    r"every|this)|removes? (?:the|a|an|all|this) \w+ (?:from|permanently)|destroys?|wipes?|erases?|"
    r"drops? (?:the |a )?(?:table|database|collection|index|schema)|crud|"
    r"create, read, update,? (?:and |or )?delete)\b"
)

DESTRUCTIVE_GATE = (
    "permanent",
    "irreversib",
    "undone",
    "reversible",
    "delet",
    "remov",
    "destroy",
    "wipe",
    "erase",
    "drop",
    "overwrit",
    "crud",
)

FINANCIAL_PHRASES = re.compile(
    r"\b(?:refunds?|charges? (?:the |a )?(?:customer|card|payment)|payouts?|send(?:s|ing)? money|transfers? "
    r"(?:funds|money)|payment link|payment intent|checkout session|subscription|invoice|billing|"
    r"purchase|buy)\b"
)

MONEY_ACTION_PHRASES = re.compile(
    r"\b(?:refunds?|charges? (?:the |a )?(?:customer|card|payment)|payouts?|send(?:s|ing)? money|"
    r"transfers? (?:funds|money)|move(?:s)? money|payment link|payment intent|checkout session)\b"
)
"""Money actions strong enough to decide on their own when the description's first sentence names them."""
MONEY_ACTION_GATE = ("refund", "charge", "payout", "money", "payment", "checkout")

READONLY_PHRASES = re.compile(
    r"\b(?:read[- ]only|readonly|does not (?:modify|change|write)|"
    r"without (?:modifying|changing|making changes)|no side effects|safe to call)\b"
)

READONLY_GATE = ("read-only", "read only", "readonly", "does not", "without", "side effect", "safe to call")

EXECUTE_PHRASES = re.compile(
    r"\b(?:(?:execute|run)s? (?:a |an |the |arbitrary |any |raw )?(?:browser |custom |own |user |page |"
    r"executable |javascript |python |node |bash |shell )?(?:sql|shell|command|script|code|"
    r"javascript|python|query|queries|statement|terminal|workflow|pipeline|job|task|process|graphql|"
    r"mutations?)|"
    r"arbitrary (?:code|commands?|sql)|in a (?:sandbox|terminal|shell))"
)

EXECUTE_GATE = ("execut", "run", "arbitrary", "sandbox", "terminal", "shell")

RUNS_CODE = re.compile(r"\b(?:code|scripts?|javascript|python|shell|bash|commands?)\b")
"""What an execute phrase names when the tool runs a program, not a query or a job."""

OPERATION_KEYS = frozenset({"operation", "action", "op", "operation_type", "action_type"})
"""Schema properties that choose what a multi-action tool does."""

ENUMERATION_RE = re.compile(r"[a-z]+(?:(?:,| ,)\s*[a-z]+)*,?\s+(?:or|and|and/or)\s+[a-z]+|[a-z]+(?:/[a-z]+)+")

DATA_LOSS_PHRASES = re.compile(
    r"\b(?:overwrit\w* (?:an? |the |any )?existing|replac\w* (?:the |an? )?existing|permanently|"
    r"irreversibl\w*|cannot be undone|can't be undone|can not be undone|not reversible|without warning)\b"
)
"""Words that turn an ordinary write into one that loses what was there."""
DATA_LOSS_GATE = ("overwrit", "replac", "permanent", "irreversib", "undone", "reversible", "without warning")

QUERY_NOUNS = words("query queries search")
LIFECYCLE_VERBS = words("cancel stop kill abort terminate pause resume retry rerun")
WRITE_CAPABLE_QUERY = re.compile(
    r"\b(?:sql|insert|update|upsert|delete|drop|alter|mutations?|ddl|dml|writes?|modif(?:y|ies))\b"
)
WRITE_CAPABLE_GATE = (
    "sql",
    "insert",
    "update",
    "upsert",
    "delet",
    "drop",
    "alter",
    "mutation",
    "ddl",
    "dml",
    "write",
    "modif",
)
"""A query tool that names none of these can only read, whatever verb runs it."""

SCHEMA_EXECUTE = words("""command cmd commands script code shell sql query statement expression function
    javascript python program query_sql raw_sql bash args_command""")
SCHEMA_FINANCIAL = words("""amount unit_amount unitamount currency price cost payment_method
    paymentmethod amount_cents amountcents""")
SCHEMA_DESTRUCTIVE = words("force confirm confirmation overwrite recursive cascade")

SQL_HINT = re.compile(r"\bsql\b|\bselect\b.*\bfrom\b|\binsert\b|\bddl\b|\bdml\b", re.IGNORECASE)


def inflections(verb: str) -> list[str]:
    forms = [verb, verb + "s", verb + "es", verb + "ed", verb + "d", verb + "ing"]
    if verb.endswith("e"):
        forms.append(verb[:-1] + "ing")
    if verb.endswith("y"):
        forms += [verb[:-1] + "ies", verb[:-1] + "ied"]
    if len(verb) <= 4 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou":
        forms += [verb + verb[-1] + "ed", verb + verb[-1] + "ing"]
    return forms


INFLECTED: dict[str, Category] = {}
for _verb, _verb_cat in VERB_CATEGORY.items():
    for _form in inflections(_verb):
        INFLECTED.setdefault(_form, _verb_cat)
INFLECTED.update(VERB_CATEGORY)


def verb_category(word: str) -> Category | None:
    """The category of a verb, also for its inflected forms (deletes, deleted, deleting, dropped)."""
    return INFLECTED.get(word)


NOUN_FIRST = words("""monitor watch search query report export import test build trace record note comment
    tag label link map format status info health docs hash filter snapshot screenshot sample review audit
    scan""")
"""Verbs in `search_docs`, objects in `monitor_create`: there the name's last verb is the action."""

PHRASAL_ENDS: dict[str, tuple[Category, str]] = {
    "down": (DESTRUCTIVE, "tears it down (stops and removes it)"),
    "up": (EXECUTE, "brings it up (starts it)"),
}
"""`compose_down`, `stack_up`: a name that ends in up/down with no verb before it."""

ASSET_TRADE_VERBS = words("swap stake unstake bridge")
ASSET_NOUNS = words("""token tokens coin coins crypto stock stocks share shares asset assets currency
    currencies nft nfts""")
"""Swapping or staking tokens trades assets; swapping two panes does not."""

REMOTE_NOUNS = words("git branch branches commit commits remote remotes origin image images tag tags docker")
"""Pushing these publishes work to a remote where CI and deployments act on it; pushing files to an API
commits them (a write)."""
