"""A primary mail server that knows some recipients (aiosmtpd on loopback), restartable on
its port so a test can take it down and bring it back."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from tests.harness import free_port


class KnownRecipients:
    """aiosmtpd handler: accepts the recipients it knows (any case), 550 for the rest."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.asked: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.asked.append(address)
        if address.lower() in self.known:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return "550 5.1.1 No such user here"


class Primary:
    """Starts and stops on one port (an aiosmtpd Controller cannot be restarted)."""

    def __init__(self, handler: KnownRecipients) -> None:
        self.handler, self.port = handler, free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
