"""Smoke test of the Python client generated from openapi/openapi.json (`make clients-check`).

Sends one message of every channel and type, in the shapes of the provider documents' examples,
through the generated client, and reads each back until the provider has taken it.
Args: gateway URL, API key. Imports `gateway_client` from PYTHONPATH.
"""
import sys
import time

from gateway_client import AuthenticatedClient
from gateway_client import models
from gateway_client.api.messages import v1_messages_get, v1_messages_send

TO = "85268411234"
LINK = "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893"
EXAMPLES = {
    ("whatsapp", "text"): {"text": {"body": "Hello, this is a test message", "preview_url": False}},
    ("whatsapp", "image"): {"image": {"link": LINK + ".png", "caption": "An image"}},
    ("whatsapp", "video"): {"video": {"link": LINK + ".mp4", "caption": "A video"}},
    ("whatsapp", "audio"): {"audio": {"link": LINK + ".mp3"}},
    ("whatsapp", "document"): {"document": {"link": LINK + ".pdf", "caption": "A document", "filename": "invoice.pdf"}},
    ("whatsapp", "sticker"): {"sticker": {"link": LINK + ".webp"}},
    ("whatsapp", "location"): {"location": {"latitude": 22.3193, "longitude": 114.1694, "name": "Central", "address": "1 Queen's Road"}},
    ("whatsapp", "contacts"): {"contacts": [{"name": {"formatted_name": "John Smith", "first_name": "John"},
                                             "phones": [{"phone": "+85268411234", "type": "WORK"}]}]},
    ("whatsapp", "template"): {"template": {"name": "test_header_text_2", "language": "en_US", "components": [
        {"type": "header", "parameters": [{"type": "text", "text": "2025-10-01"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "the end of 2025"}, {"type": "text", "text": "25OFF"},
                                        {"type": "text", "text": "25%"}]}]}},
    ("whatsapp", "interactive"): {"interactive": {"type": "button", "body": {"text": "Confirm your booking?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                               {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}},
    ("viber", "otp"): {"otp": {"code": "123456", "language": "en", "code_expiration_minutes": 3}},
    ("viber", "text"): {"text": "Hello from Viber"},
    ("viber", "image"): {"image": {"link": LINK + ".png"}},
    ("viber", "video"): {"video": {"link": LINK + ".mp4"}},
    ("viber", "document"): {"document": {"link": LINK + ".pdf"}},
    ("rcs", "template"): {"template": {"name": "test_button_reply_1", "parameters": {"username": "jack", "service_name": "promotion"}}},
    ("rcs", "text"): {"text": "Hello from RCS"},
    ("rcs", "image"): {"image": {"link": LINK + ".png"}},
    ("rcs", "video"): {"video": {"link": LINK + ".mp4"}},
    ("rcs", "document"): {"document": {"link": LINK + ".pdf"}},
}
TAKEN = {"submitted", "sent", "delivered", "read"}


def main(url, key):
    client = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
    failures = []
    sent = []
    for (channel, kind), content in EXAMPLES.items():
        model = getattr(models, f"{channel.capitalize()}{kind.capitalize()}Message")
        body = model.from_dict({"channel": channel, "to": TO, "type": kind, **content})
        response = v1_messages_send.sync_detailed(client=client, body=body)
        if response.status_code != 202 or not isinstance(response.parsed, models.MessageOut):
            failures.append(f"{channel} {kind}: answered {response.status_code}: {response.content[:300]!r}")
            continue
        sent.append((channel, kind, response.parsed.id))
    deadline = time.monotonic() + 60
    for channel, kind, message_id in sent:
        while True:
            got = v1_messages_get.sync(message_id, client=client)
            if not isinstance(got, models.MessageOut):
                failures.append(f"{channel} {kind}: could not read {message_id} back: {got!r}")
                break
            if got.channel.value != channel or got.type_.value != kind:
                failures.append(f"{channel} {kind}: read back as {got.channel.value} {got.type_.value}")
                break
            if got.status.value in TAKEN:
                print(f"  ok  {channel:<8} {kind:<12} {message_id} {got.status.value} via {got.account}")
                break
            if got.status.value in {"failed", "cancelled"} or time.monotonic() > deadline:
                failures.append(f"{channel} {kind}: {message_id} is {got.status.value}, not taken by a provider")
                break
            time.sleep(0.2)
    for f in failures:
        print(f"  FAIL {f}")
    print(f"smoke: {len(sent)} sent, {len(EXAMPLES) - len(failures)} of {len(EXAMPLES)} read back as taken by a provider")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
