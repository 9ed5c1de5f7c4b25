"""MQTT push on one connection: subscriptions, reconnection with backoff, acked publishes.

A cloud that pushes readings (Energydata.dk) hands this module its broker, topics and a
callback; the connection is kept up until the task running `run` is cancelled, which
disconnects cleanly. A new client is made for every connection (clean session), so a
message the broker refused is never sent again on reconnect.
"""

import asyncio
from collections.abc import Callable, Sequence
import logging
import ssl
from typing import Final

import aiomqtt

from .errors import CannotConnect, PublishRefused

_LOGGER = logging.getLogger(__name__)

BACKOFF: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds between reconnection attempts: quick at first, then once a minute."""
PUBLISH_TIMEOUT: Final = 10.0
"""Seconds a QoS 1 publish waits for the broker's acknowledgement."""


class PushClient:
    """Keep one MQTT connection to a broker, subscribed to some topics."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        ssl_context: ssl.SSLContext | None,
        topics: Sequence[str],
        on_message: Callable[[str, bytes], None],
        on_state: Callable[[bool], None],
        name: str,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        """Remember where to connect and what to do with messages and state changes."""
        self.host = host
        self.port = port
        self._username = username
        self._ssl_context = ssl_context
        self.topics = tuple(dict.fromkeys(topics))
        self._on_message = on_message
        self._on_state = on_state
        self.name = name
        self._backoff = tuple(backoff)
        self._client: aiomqtt.Client | None = None
        self._lost = asyncio.Event()
        """Set when the current connection ends (a fresh one per connection)."""
        self.connections = 0

    @property
    def connected(self) -> bool:
        """Tell whether a connection is up now."""
        return self._client is not None

    async def run(self) -> None:
        """Connect, subscribe and deliver messages; reconnect after any loss."""
        failures = 0
        while True:
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self._username,
                tls_context=self._ssl_context,
                protocol=aiomqtt.ProtocolVersion.V311,
                clean_session=True,
                timeout=PUBLISH_TIMEOUT,
            )
            # aiomqtt records why a connection ended in a future that nobody reads
            # when connecting failed: asyncio would log it as an error, once per
            # attempt, for as long as the broker is away. The reason is logged below.
            client._disconnected.add_done_callback(_read_reason)  # noqa: SLF001
            try:
                async with client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self._lost = asyncio.Event()
                    self._client = client
                    self.connections += 1
                    failures = 0
                    _LOGGER.debug(
                        "%s: connected to %s:%s", self.name, self.host, self.port
                    )
                    self._on_state(True)
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            self._on_message(str(message.topic), bytes(message.payload))
            except aiomqtt.MqttError as err:
                # The reason may quote the CONNECT; it never holds the token itself.
                _LOGGER.debug("%s: connection lost or refused: %s", self.name, err)
            finally:
                if self._client is not None:
                    self._client = None
                    self._lost.set()
                    self._on_state(False)
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement.

        A broker that refuses a message disconnects the client without an
        acknowledgement: the connection's end refuses the publish at once, not
        after PUBLISH_TIMEOUT (aiomqtt would wait that long for it).
        """
        client, lost = self._client, self._lost
        if client is None:
            raise CannotConnect(f"{self.name}: not connected to the MQTT broker")
        publishing = asyncio.ensure_future(
            client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT)
        )
        dropped = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait(
                (publishing, dropped), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            dropped.cancel()
            publishing.cancel()  # no-op once acknowledged
        if publishing.done() and not publishing.cancelled():
            try:
                publishing.result()
            except aiomqtt.MqttError as err:
                raise PublishRefused(
                    f"{self.name}: the broker did not acknowledge the message "
                    f"on {topic}"
                ) from err
            return
        raise PublishRefused(
            f"{self.name}: the broker closed the connection instead of "
            f"acknowledging the message on {topic}"
        )


def _read_reason(future: asyncio.Future[None]) -> None:
    """Mark a connection's end as seen (its reason is logged where it surfaces)."""
    if not future.cancelled():
        future.exception()
