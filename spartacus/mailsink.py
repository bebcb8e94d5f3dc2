"""A local SMTP sink for the local stack: catches every message, shows them on a page.

    python -m spartacus.mailsink --smtp-port 2525 --http-port 8025 --dir .run/mail

Messages are stored one file each (``NNNN.eml``) in ``--dir``; the page at
``http://127.0.0.1:HTTP_PORT/`` lists them newest first, ``/N`` shows one, and
``/messages.json`` lists them for scripts. Loopback only: it is a development tool.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import signal
import sys
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailSink", "read_messages"]


class _Store:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.lock:
            number = len(list(self.folder.glob("*.eml"))) + 1
            raw = envelope.original_content or envelope.content
            rcpt = ",".join(envelope.rcpt_tos)
            (self.folder / f"{number:05d}.eml").write_bytes(f"X-Sink-Rcpt-To: {rcpt}\r\n".encode() + raw)
        return "250 Message accepted for delivery"


def read_messages(folder: Path) -> list[dict[str, Any]]:
    """The caught messages, oldest first: to, subject, date, the relay's kind and campaign, text body."""
    out = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_body(preferencelist=("plain",))
        out.append(
            {
                "id": int(path.stem),
                "to": msg["X-Sink-Rcpt-To"] or msg["To"],
                "subject": msg["Subject"],
                "date": msg["Date"],
                "kind": msg["X-Spartacus-Kind"],  # roster | instructions | update | progress (the relay's)
                "campaign": msg["X-Spartacus-Campaign"],
                "text": text.get_content() if text is not None else "",
            }
        )
    return out


def _page(folder: Path, path: str) -> tuple[int, str, bytes]:
    messages = read_messages(folder)
    if path == "/messages.json":
        return 200, "application/json", json.dumps(messages).encode()
    if path.strip("/").isdigit():
        wanted = int(path.strip("/"))
        match = next((m for m in messages if m["id"] == wanted), None)
        if match is None:
            return 404, "text/plain", b"no such message"
        body = (
            f"<p><a href='/'>all messages</a></p><h2>{html.escape(match['subject'] or '')}</h2>"
            f"<p>To: {html.escape(match['to'] or '')}</p><pre>{html.escape(match['text'])}</pre>"
        )
    else:
        rows = "".join(
            f"<tr><td><a href='/{m['id']}'>{m['id']}</a></td><td>{html.escape(m['to'] or '')}</td>"
            f"<td>{html.escape(m['subject'] or '')}</td></tr>"
            for m in reversed(messages)
        )
        body = (
            f"<h1>Spartacus mail sink</h1><p>{len(messages)} message(s) caught.</p>"
            f"<table border=1 cellpadding=4><tr><th>#</th><th>to</th><th>subject</th></tr>{rows}</table>"
        )
    page = f"<!doctype html><meta charset=utf-8><title>Mail sink</title><body style='font-family:sans-serif'>{body}"
    return 200, "text/html; charset=utf-8", page.encode()


class MailSink:
    """SMTP on one loopback port, the page on another."""

    def __init__(self, folder: Path, smtp_port: int, http_port: int) -> None:
        self.folder = folder
        self.smtp = Controller(_Store(folder), hostname="127.0.0.1", port=smtp_port)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, kind, payload = _page(sink.folder, self.path)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        self.http = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)

    def start(self) -> None:
        self.smtp.start()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.smtp.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args(argv)
    sink = MailSink(args.dir, args.smtp_port, args.http_port)
    sink.start()
    print(f"mail sink: smtp://127.0.0.1:{args.smtp_port}  page http://127.0.0.1:{args.http_port}/", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
