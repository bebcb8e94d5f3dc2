"""The relay's sending: one SMTP session per delivery pass, and the exactly-once state of each row.

Each outbox row (:mod:`spartacus._relay_outbox`) goes::

    pending ─ MAIL, RCPT, DATA, body ─▶ commit "sending" ─ "." ─▶ 250 ─▶ commit "delivered"
       │  RCPT/DATA 5xx ─▶ failed            │                 └─ 5xx ─▶ failed; 4xx ─▶ pending
       │  4xx ─▶ pending, retried later      └─ process killed, or link lost before the answer
       │  link down ─▶ pending, retried            ─▶ "uncertain": never resent automatically
       └  (exponential backoff)

A server can accept a message only at its end-of-data line (RFC 5321 §4.1.1.4), so a row is
``sending`` exactly while the server may hold it; :mod:`spartacus.relay` explains the one
residual window.

**TLS.** ``starttls`` upgrades a plain connection before anything else is said (EHLO aside);
``ssl`` speaks TLS from the first byte. Both verify the server's certificate and its host name
against ``--smtp-host``, with the system's CAs or only the CA given with ``--smtp-ca-file``. A
failed upgrade closes the connection at once: no MAIL, no login, nothing is sent in clear.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._exceptions import InputError, MailError
from ._relay_outbox import Delivery, Outbox, Row
from ._relay_render import DEFAULT_SENDER, smtp_data, valid_address

__all__ = ["Mailer", "Security", "SmtpSettings"]

Security = Literal["none", "starttls", "ssl"]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, ``none``/``starttls``/``ssl``, CA file, login, From address."""

    host: str
    port: int
    security: Security = "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 60.0
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if not self.host or not self.host.strip() or any(c.isspace() for c in self.host):
            raise InputError(f"--smtp-host {self.host!r}: give the SMTP server's host name or IP address")
        if type(self.port) is not int or not 0 < self.port < 65536:
            raise InputError(f"--smtp-port {self.port!r}: a TCP port is 1 to 65535 (25, 465 or 587 usually)")
        if self.security not in ("none", "starttls", "ssl"):
            raise InputError(f"SMTP security {self.security!r}: use none, starttls or ssl")
        if not valid_address(self.sender):
            raise InputError(f"--from {self.sender!r} is not an e-mail address: give the address the mail comes from")
        if self.user and self.password is None:
            raise InputError("--smtp-user needs a password: set SPARTACUS_SMTP_PASSWORD or pass --smtp-password-file")
        if self.timeout <= 0:
            raise InputError("the SMTP timeout must be positive")
        if self.ca_file is not None:
            if self.security == "none":
                raise InputError("--smtp-ca-file is for TLS: add --smtp-starttls (port 587) or --smtp-ssl (port 465)")
            self.tls_context()  # a file that is not there or holds no certificate: say so now

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name checked; only ``ca_file``'s CAs trusted when it is given."""
        if self.ca_file is None:
            return ssl.create_default_context()
        path = Path(self.ca_file)
        if not path.is_file():
            raise InputError(f"--smtp-ca-file {path}: no such file; give the PEM file of the CA that signed the server")
        try:
            return ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise InputError(
                f"--smtp-ca-file {path} holds no usable PEM certificate ({exc}): give the CA's certificate in PEM"
            ) from exc


def unavailable(where: str, exc: BaseException | str) -> MailError:
    reason = exc if isinstance(exc, str) else (str(exc) or exc.__class__.__name__)
    return MailError(
        f"SMTP server {where} unavailable ({reason}): check --smtp-host/--smtp-port and that it is up;"
        " nothing is lost, the relay resumes where it stopped",
        transient=True,
    )


def _answer(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"


def _tls_error(s: SmtpSettings, exc: ssl.SSLError) -> MailError:
    """One line that says what is wrong with the TLS link and what to do; nothing was sent."""
    where = s.where
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or str(exc)
        if "mismatch" in why.lower():
            return MailError(
                f"the SMTP server {where} presented a certificate that is not valid for {s.host!r} ({why}):"
                " pass as --smtp-host the name its certificate is for; nothing was sent"
            )
        hint = "the CA that signed it with --smtp-ca-file" if s.ca_file is None else f"its CA, not {s.ca_file}"
        return MailError(
            f"the SMTP server {where} presented a certificate this relay does not trust ({why}): pass {hint},"
            " or check --smtp-host; nothing was sent"
        )
    return MailError(
        f"TLS with the SMTP server {where} failed ({exc.reason or exc}): check --smtp-starttls/--smtp-ssl"
        " and the port (465 is usually SSL, 587 STARTTLS); nothing was sent"
    )


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


class Mailer:
    """Sends what is due in an outbox over one SMTP server, keeping each row's state exact."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        notify: Callable[[str], None],
        retry_base: float = 5.0,
        retry_max: float = 600.0,
        max_attempts: int = 30,
    ) -> None:
        self.settings = settings
        self.notify = notify
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.sent = 0
        self._contacted = False  # a first connection failing on a bad host name is a typo, not an outage

    def deliver(self, outbox: Outbox, report: Delivery, stop: Callable[[], bool]) -> None:
        """Every due row, in one session (opened only if there is something to send)."""
        due = outbox.due()
        if not due:
            return
        with self.session() as smtp:
            for row in due:
                if stop():
                    return
                self._send(smtp, outbox, row, report)

    @contextmanager
    def session(self) -> Iterator[smtplib.SMTP]:
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            context = s.tls_context() if s.security != "none" else None
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        f"the SMTP server {s.where} does not offer STARTTLS: nothing was sent; use the port where"
                        " it does (587 usually), --smtp-ssl for implicit TLS, or neither for a local sink"
                    )
                code, resp = smtp.starttls(context=context)
                if code != 220:  # pragma: no cover - smtplib raises on a non-220 answer
                    raise MailError(f"the SMTP server {s.where} refused STARTTLS ({_answer(code, resp)})")
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except MailError:
            _close(smtp)
            raise
        except socket.gaierror as exc:
            _close(smtp)
            if not self._contacted:
                raise MailError(f"unknown SMTP host {s.host!r} ({exc.strerror}): check --smtp-host") from exc
            raise unavailable(s.where, exc) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            raise MailError(
                f"the SMTP server {s.where} refused the login of {s.user!r} ({_answer(exc.smtp_code, exc.smtp_error)}):"
                " check --smtp-user and the password (SPARTACUS_SMTP_PASSWORD or --smtp-password-file)"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _close(smtp)
            raise MailError(
                f"the SMTP server {s.where} does not support it: {exc}; check --smtp-starttls/--smtp-ssl"
            ) from exc
        except smtplib.SMTPConnectError as exc:
            _close(smtp)
            if exc.smtp_code >= 500:
                raise MailError(
                    f"the SMTP server {s.where} refuses connections ({_answer(exc.smtp_code, exc.smtp_error)})"
                ) from exc
            raise unavailable(s.where, _answer(exc.smtp_code, exc.smtp_error)) from exc
        except smtplib.SMTPResponseException as exc:
            _close(smtp)
            if exc.smtp_code >= 500:
                raise MailError(
                    f"the SMTP server {s.where} refused ({_answer(exc.smtp_code, exc.smtp_error)}): nothing was sent;"
                    " check --smtp-starttls/--smtp-ssl and the port"
                ) from exc
            raise unavailable(s.where, _answer(exc.smtp_code, exc.smtp_error)) from exc
        except ssl.SSLError as exc:
            _close(smtp)
            raise _tls_error(s, exc) from exc
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            raise unavailable(s.where, exc) from exc
        self._contacted = True
        try:
            yield smtp
        finally:
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _who(self, row: Row) -> str:
        return "the organizer" if row.member < 0 else f"#{row.member}"

    def _send(self, smtp: smtplib.SMTP, outbox: Outbox, row: Row, report: Delivery) -> None:
        """One transaction; see the module docstring for the states and why."""
        sender, where = self.settings.sender, self.settings.where
        data = smtp_data(outbox.compose(row, sender))
        try:
            code, resp = smtp.mail(sender)
            if code != 250:
                self._reset(smtp)
                if code >= 500:
                    raise MailError(
                        f"the SMTP server {where} refuses the sender {sender} ({_answer(code, resp)}):"
                        " pass --from with an address it accepts (and --smtp-user if it wants a login)"
                    )
                raise unavailable(where, _answer(code, resp))  # 421 and other 4xx: the server, not the row
            code, resp = smtp.rcpt(row.recipient)
            if code not in (250, 251):
                self._refused(smtp, outbox, row, code, resp, report)
                return
            code, resp = smtp.docmd("DATA")
            if code != 354:
                self._refused(smtp, outbox, row, code, resp, report)
                return
            smtp.send(data)
        except MailError:
            raise
        except (smtplib.SMTPException, OSError) as exc:  # before the end of data: the server took nothing
            raise unavailable(where, exc) from exc
        # From here the server may take the message: commit "sending" first (see the module docstring).
        outbox.set(row.message_id, "sending", attempts=row.attempts + 1)
        try:
            smtp.send(b".\r\n")
        except (smtplib.SMTPException, OSError) as exc:  # the end-of-data line never left: nothing taken
            outbox.set(row.message_id, "pending", f"link lost before the end of data: {exc}")
            raise unavailable(where, exc) from exc
        try:
            code, resp = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            outbox.set(
                row.message_id,
                "uncertain",
                f"the link was lost while waiting for the server's answer to the whole message ({exc}): most likely"
                " delivered; check the server's log, and only if it is missing run `relay run --resend MESSAGE_ID`",
            )
            report.uncertain.append(row.message_id)
            self.notify(f"uncertain: {self._who(row)} {row.recipient} {row.message_id} (no answer to the message)")
            raise unavailable(where, exc) from exc
        if 200 <= code < 300:
            outbox.set(row.message_id, "delivered")
            self.sent += 1
            report.sent.append(row.message_id)
            self.notify(
                f"sent {self.sent}: {row.kind} (batch {row.batch}) to {self._who(row)} {row.recipient} [{row.campaign}]"
            )
        elif code >= 500:
            self._fail(outbox, row, _answer(code, resp), report)
        else:
            self._defer(outbox, row, _answer(code, resp), report, attempts=row.attempts + 1)
            if code == 421:
                raise unavailable(where, _answer(code, resp))

    def _refused(self, smtp: smtplib.SMTP, outbox: Outbox, row: Row, code: int, resp: bytes, report: Delivery) -> None:
        """RCPT or DATA refused: 5xx is final for this row, 4xx is retried later, 421 is the server's."""
        self._reset(smtp)
        if code == 421:
            raise unavailable(self.settings.where, _answer(code, resp))
        if code >= 500:
            self._fail(outbox, row, _answer(code, resp), report)
        else:
            self._defer(outbox, row, _answer(code, resp), report)

    @staticmethod
    def _reset(smtp: smtplib.SMTP) -> None:
        with suppress(smtplib.SMTPException, OSError):
            smtp.rset()

    def _fail(self, outbox: Outbox, row: Row, answer: str, report: Delivery) -> None:
        outbox.set(row.message_id, "failed", f"refused for good: {answer}")
        report.failed.append(row.message_id)
        self.notify(
            f"failed: {row.kind} (batch {row.batch}) to {self._who(row)} {row.recipient}: {answer} (not retried)"
        )

    def _defer(self, outbox: Outbox, row: Row, answer: str, report: Delivery, *, attempts: int | None = None) -> None:
        attempts = row.attempts + 1 if attempts is None else attempts
        if attempts >= self.max_attempts:
            outbox.set(row.message_id, "failed", f"gave up after {attempts} attempts; last answer: {answer}")
            report.failed.append(row.message_id)
            self.notify(f"failed: {self._who(row)} {row.recipient}: gave up after {attempts} attempts ({answer})")
            return
        delay = min(self.retry_base * 2 ** (attempts - 1), self.retry_max)
        outbox.set(row.message_id, "pending", answer, attempts=attempts, next_attempt=time.time() + delay)
        report.deferred.append(row.message_id)
        self.notify(f"deferred: {self._who(row)} {row.recipient}: {answer} (attempt {attempts}; next in {delay:.1f} s)")
