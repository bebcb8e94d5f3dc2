"""The relay's messages: what each kind says, rendered once per batch, composed into exact bytes.

Four kinds of message, each a text/plain and an HTML part (every member-provided text
HTML-escaped):

* ``roster``: the whole roster (names and the contact fields each chose to share), the
  organizer's instructions, the campaign's link and how to verify the count on-chain. Every
  member of the reveal gets it, and a late joiner under the ``roster`` policy;
* ``instructions``: the organizer's instructions and nothing else (no earlier member, not
  the organizer's name): a late joiner under the ``known`` policy;
* ``update``: the newcomers of one batch, to each earlier member who holds the roster;
* ``progress``: to the organizer (from the relay note), at 50 %, 90 % and 100 % of N and at
  the deadline; public facts only.

A batch's parts are rendered once (O(N) for N members, not one roster per recipient);
:func:`compose_message` turns them into the bytes of one message, the same bytes every time
(the Date is the batch's, the MIME boundary derives from the Message-ID), so a message sent
again is byte-for-byte the same.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as _SMTP_POLICY
from email.utils import formataddr

from .roster import Roster, RosterEntry
from .types import LateJoiners

__all__ = [
    "DEFAULT_DAPP_URL",
    "DEFAULT_SENDER",
    "MILESTONES",
    "CampaignInfo",
    "MessageParts",
    "campaign_link",
    "compose_message",
    "instructions_parts",
    "progress_parts",
    "roster_parts",
    "smtp_data",
    "update_parts",
    "valid_address",
]

DEFAULT_DAPP_URL = "http://localhost:8501/"
DEFAULT_SENDER = "spartacus-relay@localhost"
#: The organizer's progress notices: outbox ``batch`` code -> what it marks.
MILESTONES: dict[int, str] = {50: "50%", 90: "90%", 100: "100%", 101: "deadline"}

# 7-bit clean (quoted-printable bodies, RFC 2047 headers) and CRLF: any server takes it.
_POLICY = _SMTP_POLICY.clone(cte_type="7bit")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+|{_ATOM}(?:\.{_ATOM})*@localhost")
_EOL_RE = re.compile(rb"\r\n|\r|\n")
_FOOTER = "This message was sent once to each member by the campaign's relay."
_H2 = '<h2 style="font-size:1.05em">'


def valid_address(text: str) -> bool:
    """A plain ASCII addr-spec (``local@domain``) that any SMTP server can take in RCPT TO."""
    return isinstance(text, str) and len(text) <= 254 and _ADDRESS_RE.fullmatch(text) is not None


def campaign_link(dapp_url: str, campaign: str) -> str:
    """The campaign's page: ``{campaign}`` in the URL is replaced, else ``?campaign=`` is added."""
    if "{campaign}" in dapp_url:
        return dapp_url.replace("{campaign}", campaign)
    return f"{dapp_url}{'&' if '?' in dapp_url else '?'}campaign={campaign}"


@dataclass(frozen=True)
class CampaignInfo:
    """The public facts every message carries (from the contract and its creation event)."""

    address: str
    chain_id: int
    title: str
    purpose: str
    threshold: int
    count: int
    reveal_block: int
    link: str
    organizer_index: int | None = None
    late_joiners: LateJoiners = LateJoiners.KNOWN
    deadline: int = 0


@dataclass(frozen=True)
class MessageParts:
    """One batch's message of one kind, rendered once: the same for every recipient."""

    subject: str
    text: str
    html: str


def _one_line(text: str, limit: int = 150) -> str:
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _mark(m: RosterEntry, info: CampaignInfo) -> str:
    if m.index == info.organizer_index:
        return " (organizer)"
    return " (joined after the reveal)" if m.late else ""


def _text_member(m: RosterEntry, info: CampaignInfo) -> list[str]:
    lines = [f"- {m.name}{_mark(m, info)}"]
    lines += [f"    {key}: {value}" for key, value in m.contact.items()]
    if m.message:
        first, *rest = m.message.splitlines() or [""]
        lines += [f'    says: "{first}'] + [f"      {line}" for line in rest]
        lines[-1] += '"'
    return lines


def _html_member(m: RosterEntry, info: CampaignInfo) -> str:
    parts = [f"<strong>{_e(m.name)}</strong>{_e(_mark(m, info))}"]
    parts += [f"{_e(key)}: {_e(value)}" for key, value in m.contact.items()]
    if m.message:
        parts.append(f'says: <em style="white-space:pre-wrap">&ldquo;{_e(m.message)}&rdquo;</em>')
    return '<li style="margin-bottom:.6em">' + "<br>".join(parts) + "</li>"


def _text_verify(info: CampaignInfo) -> list[str]:
    reveal = (
        f"    (the reveal is its ThresholdReached event, in block {info.reveal_block});"
        if info.reveal_block
        else "    (the reveal, when it comes, is its ThresholdReached event);"
    )
    return [
        "VERIFY THE COUNT ON-CHAIN",
        "The count is the contract's, not this email's. On chain id "
        f"{info.chain_id}, the campaign is the contract {info.address}:",
        f"  * call its view pledgeCount() for the live count ({info.count} when this was written),",
        "    threshold() and state() (1 means revealed);",
        "  * or recount from its events: +1 for each Pledged, -1 for each Withdrawn",
        reveal,
        f"  * with the command line: spartacus status {info.address} --network <an RPC URL of chain {info.chain_id}>",
    ]


def _html_verify(info: CampaignInfo) -> str:
    reveal = (
        f"(the reveal is its <code>ThresholdReached</code> event, in block {info.reveal_block})"
        if info.reveal_block
        else "(the reveal, when it comes, is its <code>ThresholdReached</code> event)"
    )
    return (
        f"{_H2}Verify the count on-chain</h2>"
        f"<p>The count is the contract's, not this email's. On chain id <code>{info.chain_id}</code>, "
        f"the campaign is the contract <code>{_e(info.address)}</code>:</p><ul>"
        f"<li>call its view <code>pledgeCount()</code> for the live count ({info.count} when this was "
        "written), <code>threshold()</code> and <code>state()</code> (1 means revealed);</li>"
        "<li>or recount from its events: +1 for each <code>Pledged</code>, &minus;1 for each "
        f"<code>Withdrawn</code> {reveal};</li>"
        f"<li>with the command line: <code>spartacus status {_e(info.address)} --network &lt;an RPC URL of chain "
        f"{info.chain_id}&gt;</code></li></ul>"
    )


def _html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{_e(title)}</title></head>\n'
        '<body style="font-family:sans-serif;line-height:1.45;max-width:42em">\n'
        f"{body}\n</body></html>\n"
    )


def _tail(info: CampaignInfo, footer: str = _FOOTER) -> tuple[list[str], list[str]]:
    """The campaign page, how to verify and the footer: (text lines, HTML pieces)."""
    text = ["", "CAMPAIGN PAGE", info.link, "", *_text_verify(info), "", footer]
    page = [
        f'{_H2}Campaign page</h2><p><a href="{_e(info.link)}">{_e(info.link)}</a></p>',
        _html_verify(info),
        f'<p style="color:#666">{_e(footer)}</p>',
    ]
    return text, page


def _instructions_block(instructions: str | None) -> tuple[list[str], list[str]]:
    text = ["INSTRUCTIONS FROM THE ORGANIZER", ""]
    text += [instructions.rstrip() if instructions else "(The instructions could not be read: ask the organizer.)"]
    page = [f"{_H2}Instructions from the organizer</h2>"]
    if instructions:
        page.append(f'<pre style="white-space:pre-wrap;font-family:inherit">{_e(instructions.rstrip())}</pre>')
    else:
        page.append("<p><em>The instructions could not be read: ask the organizer.</em></p>")
    return text, page


def roster_parts(info: CampaignInfo, roster: Roster, batch: int) -> MessageParts:
    """The message each member receives once: the whole roster, the instructions, the link, how to verify."""
    members = sorted(roster.members, key=lambda m: m.index)
    title = _one_line(info.title)
    subject = f"[Spartacus] {title}: revealed, {len(members)} members"
    intro = (
        f'"{title}" reached its threshold of {info.threshold} pledges'
        + (", and the campaign went on: you are among its newest members" if batch > 0 else "")
        + f". Here are the {len(members)} members, with the contact details each chose to share,"
        " and the organizer's instructions. Keep this private: it names people who trusted each other."
    )
    itext, ipage = _instructions_block(roster.instructions)
    text = [f"{title}: the campaign is revealed", "", intro, "", *itext, "", f"MEMBERS ({len(members)})", ""]
    for m in members:
        text += _text_member(m, info)
    page = [f'<h1 style="font-size:1.3em">{_e(title)}: the campaign is revealed</h1>', f"<p>{_e(intro)}</p>", *ipage]
    page.append(f"{_H2}Members ({len(members)})</h2><ul>")
    page += [_html_member(m, info) for m in members]
    page.append("</ul>")
    ttext, tpage = _tail(info)
    return MessageParts(subject, "\n".join(text + ttext) + "\n", _html_page(subject, "\n".join(page + tpage)))


def instructions_parts(info: CampaignInfo, instructions: str | None) -> MessageParts:
    """A late joiner under the ``known`` policy: the instructions only. Nothing here names an
    earlier member or the organizer (the campaign chose to give late joiners no roster)."""
    title = _one_line(info.title)
    subject = f"[Spartacus] {title}: you joined, here are the instructions"
    intro = (
        f'You joined "{title}" after it reached its threshold of {info.threshold} pledges. Here are the'
        " organizer's instructions. This campaign gives late joiners the instructions, not the list of"
        " earlier members; the members were told that you joined, with the name and contact details you chose"
        " to share."
    )
    itext, ipage = _instructions_block(instructions)
    text = [f"{title}: welcome", "", intro, "", *itext]
    page = [f'<h1 style="font-size:1.3em">{_e(title)}: welcome</h1>', f"<p>{_e(intro)}</p>", *ipage]
    ttext, tpage = _tail(info)
    return MessageParts(subject, "\n".join(text + ttext) + "\n", _html_page(subject, "\n".join(page + tpage)))


def update_parts(
    info: CampaignInfo, newcomers: Sequence[RosterEntry], total: int, policy: LateJoiners | None = None
) -> MessageParts:
    """One message per batch of late joiners, to each earlier member: the newcomers only."""
    policy = info.late_joiners if policy is None else policy
    members = sorted(newcomers, key=lambda m: m.index)
    title = _one_line(info.title)
    subject = f"[Spartacus] {title}: {len(members)} new member{'s' if len(members) != 1 else ''}"
    got = (
        "Each newcomer received the full roster and the instructions."
        if policy is LateJoiners.ROSTER
        else "Each newcomer who joined after the reveal received the organizer's instructions, not the roster."
    )
    intro = (
        f'{len(members)} {"people" if len(members) != 1 else "person"} joined "{title}";'
        f" the campaign now has {total} members. {got}"
    )
    text = [f"{title}: new members", "", intro, "", f"NEW MEMBERS ({len(members)})", ""]
    for m in members:
        text += _text_member(m, info)
    page = [f'<h1 style="font-size:1.3em">{_e(title)}: new members</h1>', f"<p>{_e(intro)}</p>"]
    page.append(f"{_H2}New members ({len(members)})</h2><ul>")
    page += [_html_member(m, info) for m in members]
    page.append("</ul>")
    ttext, tpage = _tail(info)
    return MessageParts(subject, "\n".join(text + ttext) + "\n", _html_page(subject, "\n".join(page + tpage)))


def progress_parts(info: CampaignInfo, milestone: int, state: str, name: str | None = None) -> MessageParts:
    """To the organizer: where the campaign stands (public facts only: the count, the threshold)."""
    title = _one_line(info.title)
    count, n = info.count, info.threshold
    if milestone == 101:
        subject = f"[Spartacus] {title}: the deadline has passed"
        if state == "revealed":
            news = f'The deadline of "{title}" has passed. It was revealed; it now has {count} live pledges.' + (
                " Late joiners' deposits are no longer locked." if info.late_joiners is LateJoiners.ROSTER else ""
            )
        else:
            news = (
                f'The deadline of "{title}" has passed with {count} of {n} pledges: it was never revealed, and'
                " never will be. Nobody's pledge was opened; deposits can be refunded."
            )
    elif milestone == 100:
        subject = f"[Spartacus] {title}: threshold reached, revealed"
        news = (
            f'"{title}" reached its threshold of {n} pledges and is revealed. The keepers release the roster;'
            " every member with an e-mail address receives it once, with your instructions."
        )
    else:
        subject = f"[Spartacus] {title}: {MILESTONES[milestone]} of the threshold"
        news = f'"{title}" has {count} of the {n} pledges it needs ({MILESTONES[milestone]} of the threshold reached).'
    greeting = f"Hello {_one_line(name, 60)}," if name else "Hello,"
    why = (
        "You receive this because the campaign's creation named this relay and gave it your address, sealed so"
        " that only the relay can read it. Nobody else learns it from the chain."
    )
    text = [greeting, "", news, "", why]
    page = [f"<p>{_e(greeting)}</p>", f"<p>{_e(news)}</p>", f"<p>{_e(why)}</p>"]
    ttext, tpage = _tail(info, "This message was sent once by the campaign's relay.")
    return MessageParts(subject, "\n".join(text + ttext) + "\n", _html_page(subject, "\n".join(page + tpage)))


def compose_message(
    parts: MessageParts,
    *,
    kind: str,
    batch: int,
    campaign: str,
    sender: str,
    recipient: str,
    message_id: str,
    date: str,
) -> bytes:
    """The bytes of one message. Deterministic (the Date is the batch's, the MIME boundary derives
    from the Message-ID), so a message sent again is byte-for-byte the same."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr(("Spartacus relay", sender))
    msg["To"] = recipient
    msg["Subject"] = parts.subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Spartacus-Campaign"] = campaign
    msg["X-Spartacus-Kind"] = kind
    msg["X-Spartacus-Batch"] = str(batch)
    msg.set_content(parts.text, cte="quoted-printable")
    msg.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    # "=_" never occurs in quoted-printable bodies: a safe boundary.
    msg.set_boundary("=_spartacus_" + hashlib.sha256(message_id.encode()).hexdigest()[:32])
    return msg.as_bytes()


def smtp_data(body: bytes) -> bytes:
    """The message as DATA sends it, without the end-of-data line: CRLF, dot-stuffed, CRLF-terminated."""
    data = _EOL_RE.sub(b"\r\n", body)
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"
