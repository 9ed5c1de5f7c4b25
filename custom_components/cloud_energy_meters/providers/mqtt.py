"""MQTT for clouds that push: a kept connection with subscriptions, and acked publishes.

A cloud that pushes readings (Energydata.dk) hands `PushClient` its broker, topics and
a callback; the connection is kept up until the task running `run` is cancelled, which
disconnects cleanly whatever the connection is doing then. A new client is made for
every connection (clean session), so a message the broker refused is never sent again
on reconnect. `publish_once` publishes over a connection of its own, for as long as the
acknowledgement takes.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
import logging
import ssl
from typing import Final

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from .errors import AuthError, CannotConnect, PublishRefused

_LOGGER = logging.getLogger(__name__)

BACKOFF: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds between reconnection attempts: quick at first, then once a minute."""
PUBLISH_TIMEOUT: Final = 10.0
"""Seconds a QoS 1 publish waits for the broker's acknowledgement."""
# CONNACK codes of a refused login: 3.1.1's bad username/password and not
# authorised, as paho reports them (its MQTT 5 equivalents, or the raw 3.1.1 code).
_LOGIN_REFUSED: Final = frozenset({4, 5, 134, 135})


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
        self.connections = 0

    @property
    def connected(self) -> bool:
        """Tell whether a connection is up now."""
        return self._client is not None

    async def run(self) -> None:
        """Connect, subscribe and deliver messages; reconnect after any loss."""
        failures = 0
        while True:
            client = _new_client(
                self.host, self.port, self._username, self._ssl_context
            )
            try:
                async with _connection(client):
                    if self.topics:
                        await client.subscribe([(topic, 1) for topic in self.topics])
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
                    self._on_state(False)
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish on the kept connection with QoS 1; wait for the acknowledgement."""
        if (client := self._client) is None:
            raise CannotConnect(f"{self.name}: not connected to the MQTT broker")
        await _publish(client, topic, payload, self.name)


async def publish_once(
    host: str,
    port: int,
    *,
    username: str,
    ssl_context: ssl.SSLContext | None,
    topic: str,
    payload: bytes,
    name: str,
) -> None:
    """Connect, publish with QoS 1, wait for the acknowledgement, disconnect.

    AuthError when the broker refuses the login, CannotConnect when it cannot be
    reached, PublishRefused when it does not acknowledge the message.
    """
    client = _new_client(host, port, username, ssl_context)
    try:
        async with _connection(client):
            await _publish(client, topic, payload, name)
    except aiomqtt.MqttError as err:
        if _refused_login(err):
            raise AuthError(f"{name}: the MQTT broker refused the token") from err
        raise CannotConnect(f"{name}: could not reach the MQTT broker") from err


def _new_client(
    host: str, port: int, username: str, ssl_context: ssl.SSLContext | None
) -> aiomqtt.Client:
    """Make a client for one connection: MQTT 3.1.1, clean session."""
    client = aiomqtt.Client(
        host,
        port,
        username=username,
        tls_context=ssl_context,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=True,
        timeout=PUBLISH_TIMEOUT,
    )
    # aiomqtt records why a connection ended in a future that nobody reads
    # when connecting failed: asyncio would log it as an error, once per
    # attempt, for as long as the broker is away. The reason is logged where
    # it surfaces.
    client._disconnected.add_done_callback(_read_reason)  # noqa: SLF001
    return client


@asynccontextmanager
async def _connection(client: aiomqtt.Client) -> AsyncIterator[None]:
    """Connect; disconnect at the end, however it comes (a cancel included).

    aiomqtt leaves a connection open when its connect is cancelled: the socket is
    made in a thread that goes on regardless, and a cancelled wait for the CONNACK
    cancels the future its callbacks read when the connection later ends (asyncio
    then logs "Exception in callback"). So the connect runs to its end (bounded by
    its own timeouts) and only then does the cancel count: what it opened is closed.
    """
    connecting = asyncio.ensure_future(client.__aenter__())
    try:
        await asyncio.shield(connecting)
    except asyncio.CancelledError:
        # shield() reads the outcome of a connect that ends after the cancel won.
        # (Cancelled again while waiting here, the connect is left to its end.)
        await asyncio.wait([connecting])
        if not connecting.cancelled() and not connecting.exception():
            await client.__aexit__(None, None, None)
        raise
    try:
        yield
    finally:
        # DISCONNECT (aiomqtt waits until it is sent); nothing if already gone.
        await client.__aexit__(None, None, None)


async def _publish(
    client: aiomqtt.Client, topic: str, payload: bytes, name: str
) -> None:
    """Publish with QoS 1 and wait for the broker's acknowledgement.

    A broker that refuses a message disconnects the client without an
    acknowledgement: the connection's end refuses the publish at once, not
    after PUBLISH_TIMEOUT (aiomqtt would wait that long for it).
    """
    publishing = asyncio.ensure_future(
        client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT)
    )
    ended = client._disconnected  # noqa: SLF001
    try:
        await asyncio.wait((publishing, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        publishing.cancel()  # no-op once acknowledged
    if publishing.done() and not publishing.cancelled():
        try:
            publishing.result()
        except aiomqtt.MqttError as err:
            raise PublishRefused(
                f"{name}: the broker did not acknowledge the message on {topic}"
            ) from err
        return
    raise PublishRefused(
        f"{name}: the broker closed the connection instead of "
        f"acknowledging the message on {topic}"
    )


def _refused_login(err: aiomqtt.MqttError) -> bool:
    """Tell whether the broker answered the CONNECT by refusing the credentials."""
    if not isinstance(err, MqttConnectError):
        return False
    return getattr(err.rc, "value", err.rc) in _LOGIN_REFUSED


def _read_reason(future: asyncio.Future[None]) -> None:
    """Mark a connection's end as seen (its reason is logged where it surfaces)."""
    if not future.cancelled():
        future.exception()
