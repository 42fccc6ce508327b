"""schemathesis hooks of `make api-fuzz`.

An Idempotency-Key replays the first response for the same body and refuses (422) another body:
the fuzzer, which reuses the few header values it draws, would send one key with many bodies.
A well-formed key is therefore made unique per request; a malformed one is left as drawn, so the
header's own validation is still fuzzed.

The 20 message schemas of the send request (one per channel and type) each take `fallback`, up to
3 steps of 20 step schemas. The coverage phase walks every step schema under every message
schema, 20 times the same work, which made it run for many minutes. The fuzzed document keeps
`fallback` on one message schema only (`FALLBACK_CARRIER`): every step schema is still covered
under it, and every message schema is still covered without it. This only narrows what the
fuzzer sends: what it generates as valid stays valid for the gateway, and what it generates as
invalid never adds a `fallback` it was not told of.
"""
import itertools
import re

import schemathesis

_WELL_FORMED = re.compile(r"^[!-~]{1,255}$")
_sequence = itertools.count()

FALLBACK_CARRIER = "WhatsappTextMessage"


@schemathesis.hook
def map_case(context, case):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _WELL_FORMED.match(key):
        case.headers["Idempotency-Key"] = f"fuzz-{next(_sequence)}"
    return case


def _message_schemas(schemas):
    """The names of the per-channel-and-type message schemas under `SendRequest`."""
    names = []
    for channel in schemas.get("SendRequest", {}).get("oneOf", []):
        channel_name = channel.get("$ref", "").rsplit("/", 1)[-1]
        for message in schemas.get(channel_name, {}).get("oneOf", []):
            names.append(message.get("$ref", "").rsplit("/", 1)[-1])
    return names


@schemathesis.hook
def before_load_schema(context, raw_schema):
    schemas = raw_schema.get("components", {}).get("schemas", {})
    names = _message_schemas(schemas)
    if FALLBACK_CARRIER not in names or len(names) < 2:
        raise RuntimeError(f"api-fuzz: the send request no longer has {FALLBACK_CARRIER}; update the hook")
    for name in names:
        if name != FALLBACK_CARRIER:
            schemas[name].get("properties", {}).pop("fallback", None)
