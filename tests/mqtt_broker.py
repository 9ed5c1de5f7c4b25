"""A real Mosquitto broker that behaves like Energydata.dk's, for tests.

Energydata.dk (mqtts.energydata.dk:8883, TLS, MQTT 3.1.1) takes the API token as the
USERNAME with no password, lets a token publish and subscribe only on the topics of the
datasets it grants (`<prefix>` and `<prefix>/...`), and disconnects a client whose
PUBLISH is not authorised (so a QoS 1 publish never gets its PUBACK).

Mosquitto 2.0.11 (Debian 12) cannot do that with its own configuration: a password file
cannot admit a username without a password, and `acl_file` drops a denied PUBLISH but
still answers it with a PUBACK. tests/mosquitto/edk_auth.c is a small plugin (v5 API)
that does the authentication and the ACL, and kicks the client on a denied PUBLISH.
The kick runs inside the ACL check and closes the connection at once; 2.0.11 then
still "sends" its PUBACK, but to a closed socket, so the client sees EOF and never a
PUBACK (proved on the wire by tests/simulator/test_mqtt_broker.py; valgrind-clean).

Use:
    `mqtt_broker` fixture (import it into a conftest: `from .mqtt_broker import
    mqtt_broker  # noqa: F401`): a started `Broker` on 127.0.0.1 and a free port,
    tokens DEMO_TOKEN and READONLY_TOKEN, both granted the prefix DEMO_PREFIX.
    `ssl_context(broker)` (or `broker.ssl_context()`): a client context trusting the
    broker's throwaway CA (`broker.ca_file`).
    `broker.client_connections()`: how many client connections the broker holds open
    now, read from the kernel (every stage counts: before CONNECT, idle, ...).
    `broker.add_token(token, prefixes, delay=0.3)`: a slow token, whose CONNACK and
    SUBACKs come late (to catch a client while it waits for them).

Requirements: `mosquitto` and the `mosquitto-dev` headers (`ensure_mosquitto()` installs
them with apt-get when running as root), gcc, and the `cryptography` package.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterable, Iterator, Mapping
import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import ipaddress
import os
from pathlib import Path
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import Self
import weakref

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
import pytest
import pytest_socket

DEMO_TOKEN = "edk-demo-token-0123456789"
READONLY_TOKEN = "edk-readonly-token"
DEMO_PREFIX = "dtu-b101"
DEFAULT_TOKENS: dict[str, list[str]] = {
    DEMO_TOKEN: [DEMO_PREFIX],
    READONLY_TOKEN: [DEMO_PREFIX],
}

PLUGIN_SOURCE = Path(__file__).parent / "mosquitto" / "edk_auth.c"
CONF_TEMPLATE = Path(__file__).parent / "mosquitto" / "mosquitto.conf.in"
HEADERS = (
    Path("/usr/include/mosquitto_broker.h"),
    Path("/usr/include/mosquitto_plugin.h"),
)
# mosquitto lives in /usr/sbin, which is not on every user's PATH.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

# Brokers whose process may still run, stopped at interpreter exit in case a test
# run ends without fixture teardown.
_LIVE: weakref.WeakSet[Broker] = weakref.WeakSet()

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
RELOAD_TIMEOUT = 5.0


def _cache_dir() -> Path:
    """Per-user directory under the temp dir for the built plugin and locks."""
    path = Path(tempfile.gettempdir()) / f"edk-mosquitto-plugin-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[None]:
    """Serialise installs/builds between processes (pytest-xdist workers)."""
    with (_cache_dir() / name).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _mosquitto_path() -> str | None:
    return shutil.which("mosquitto", path=_SEARCH_PATH)


def _missing() -> list[str]:
    missing = [] if _mosquitto_path() else ["mosquitto"]
    missing += [str(header) for header in HEADERS if not header.is_file()]
    return missing


def _apt_install() -> None:
    """Install the Debian packages without leaving a system broker running.

    A temporary policy-rc.d (exit 101, Debian's standard switch) keeps the package's
    postinst from starting mosquitto.service; if a service runs anyway it is stopped.
    It would only listen on 1883, which the tests never use, but nothing should be
    left behind.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
    install += ["mosquitto", "mosquitto-dev"]
    made_policy = False
    if not _POLICY_RC_D.exists():
        _POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        _POLICY_RC_D.chmod(0o755)
        made_policy = True
    try:
        quiet = {"env": env, "capture_output": True, "text": True}
        result = subprocess.run(install, check=False, **quiet)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
            result = subprocess.run(install, check=False, **quiet)
        if result.returncode != 0:
            msg = f"apt-get install mosquitto mosquitto-dev failed:\n{result.stderr}"
            raise RuntimeError(msg)
    finally:
        if made_policy:
            _POLICY_RC_D.unlink(missing_ok=True)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        stop = ["systemctl", "stop", "mosquitto.service"]
    elif Path("/etc/init.d/mosquitto").is_file():
        stop = ["/etc/init.d/mosquitto", "stop"]
    else:
        return
    subprocess.run(stop, capture_output=True, check=False, timeout=60)


def ensure_mosquitto() -> None:
    """Make sure the broker and the plugin headers are installed.

    Installs `mosquitto` and `mosquitto-dev` with apt-get when they are missing and
    we are root on a Debian-like system; otherwise raises RuntimeError.
    """
    if not _missing():
        return
    with _file_lock("install.lock"):
        if not (missing := _missing()):
            return
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            msg = (
                f"Mosquitto is needed for the MQTT tests but {', '.join(missing)} "
                "is missing; install it with: "
                "sudo apt-get install -y mosquitto mosquitto-dev"
            )
            raise RuntimeError(msg)
        _apt_install()
        if missing := _missing():
            msg = f"apt-get installed mosquitto but {', '.join(missing)} is missing"
            raise RuntimeError(msg)


@functools.cache
def build_plugin() -> Path:
    """Compile tests/mosquitto/edk_auth.c once; cached by source hash under /tmp."""
    ensure_mosquitto()
    if not (gcc := shutil.which("gcc")):
        msg = "gcc is needed to build the Mosquitto test plugin (apt-get install gcc)"
        raise RuntimeError(msg)
    source = PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    target = _cache_dir() / f"edk_auth-{digest}.so"
    if target.is_file():
        return target
    with _file_lock("build.lock"):
        if target.is_file():
            return target
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        command = [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra"]
        command += ["-o", str(partial), str(PLUGIN_SOURCE)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            msg = f"building {PLUGIN_SOURCE.name} failed:\n{result.stderr}"
            raise RuntimeError(msg)
        partial.replace(target)
    return target


def _write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a server certificate for localhost, 127.0.0.1, ::1."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EDK test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    """Tell whether mosquitto could bind host:port again (it uses SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ssl_context(broker_or_ca_file: Broker | str | os.PathLike[str]) -> ssl.SSLContext:
    """Make a client TLS context that trusts (only) the test broker's CA."""
    ca_file = (
        broker_or_ca_file.ca_file
        if isinstance(broker_or_ca_file, Broker)
        else broker_or_ca_file
    )
    return ssl.create_default_context(cafile=os.fspath(ca_file))


class Broker:
    """A Mosquitto process on 127.0.0.1 with TLS only and the edk_auth plugin.

    Tokens and prefixes are kept in `tokens.txt` in the broker's work dir (lines
    `<token> <prefix>[,<prefix>...][,delay=<ms>]`); `add_token` / `remove_token` rewrite it and send
    SIGHUP, on which Mosquitto 2.0 reloads its config and the plugin re-reads the file
    (MOSQ_EVT_RELOAD). Connected clients stay connected; new checks use the new table.

    The port is chosen at the first `start()` and kept by `restart()`.
    """

    def __init__(
        self,
        tokens: Mapping[str, Iterable[str]] | None = None,
        *,
        host: str = "127.0.0.1",
        kick_on_deny: bool = True,
    ) -> None:
        """Prepare the work dir (certificates, tokens file); nothing runs yet.

        kick_on_deny=False leaves a denied PUBLISH to Mosquitto alone (dropped and,
        for QoS 1, still acknowledged): only to show why the plugin kicks.
        """
        self._plugin = build_plugin()
        self._mosquitto = _mosquitto_path() or "mosquitto"
        self._host = host
        self._port: int | None = None
        self._kick_on_deny = kick_on_deny
        self._tokens = {
            token: list(prefixes)
            for token, prefixes in (
                DEFAULT_TOKENS if tokens is None else tokens
            ).items()
        }
        self._delays: dict[str, float] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="edk-mosquitto-"))
        self._ca_file, self._cert_file, self._key_file = _write_certificates(self._dir)
        self._tokens_file = self._dir / "tokens.txt"
        self._conf_file = self._dir / "mosquitto.conf"
        self._log_file = self._dir / "mosquitto.log"
        self._stderr_file = self._dir / "mosquitto.stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_tokens()
        #: Seconds the last start() took until the broker accepted TLS.
        self.last_start_seconds: float | None = None

    # -- properties ---------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address the listener is bound to."""
        return self._host

    @property
    def port(self) -> int:
        """The TLS listener's port (fixed after the first start)."""
        if self._port is None:
            msg = "the broker has not been started yet"
            raise RuntimeError(msg)
        return self._port

    @property
    def ca_file(self) -> Path:
        """PEM file of the throwaway CA that signed the broker's certificate."""
        return self._ca_file

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def tokens(self) -> dict[str, list[str]]:
        """A copy of the token table."""
        return {token: list(prefixes) for token, prefixes in self._tokens.items()}

    @property
    def workdir(self) -> Path:
        """The directory with the config, certificates, tokens file and log."""
        return self._dir

    def ssl_context(self) -> ssl.SSLContext:
        """Make a client TLS context trusting this broker's CA."""
        return ssl_context(self._ca_file)

    def log_text(self) -> str:
        """Return the broker's log so far (plus anything it wrote to stderr)."""
        text = ""
        for path in (self._stderr_file, self._log_file):
            with contextlib.suppress(FileNotFoundError):
                text += path.read_text(encoding="utf-8", errors="replace")
        return text

    # -- tokens -------------------------------------------------------------------

    def add_token(
        self, token: str, prefixes: Iterable[str], *, delay: float = 0.0
    ) -> None:
        """Grant `token` the given dataset prefixes (replacing its previous ones).

        A `delay` (seconds) makes the token slow: the broker holds its CONNACK and
        each SUBACK that long (the whole broker pauses meanwhile: keep it short).
        """
        prefixes = list(prefixes)
        if not token or any(c.isspace() for c in token) or not prefixes:
            msg = f"bad token or prefixes: {token!r} {prefixes!r}"
            raise ValueError(msg)
        self._tokens[token] = prefixes
        self._delays[token] = delay
        self._apply_tokens()

    def remove_token(self, token: str) -> None:
        """Revoke `token`: new connections are refused, publishes are denied."""
        self._tokens.pop(token, None)
        self._delays.pop(token, None)
        self._apply_tokens()

    def _write_tokens(self) -> None:
        lines = [
            "# <token> <prefix>[,<prefix>...][,delay=<ms>]   (read by edk_auth.so)"
        ]
        for token, prefixes in self._tokens.items():
            items = list(prefixes)
            if delay := self._delays.get(token, 0.0):
                items.append(f"delay={round(delay * 1000)}")
            lines.append(f"{token} {','.join(items)}")
        partial = self._tokens_file.with_suffix(".tmp")
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial.replace(self._tokens_file)

    def _apply_tokens(self) -> None:
        self._write_tokens()
        if not self.running or self._process is None:
            return
        # The plugin logs "edk_auth: loaded N token(s)" on every (re)load.
        loads = self.log_text().count("edk_auth: loaded")
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while self.log_text().count("edk_auth: loaded") <= loads:
            if time.monotonic() > deadline:
                msg = f"mosquitto did not reload its tokens:\n{self.log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.01)

    # -- clients ------------------------------------------------------------------

    def client_connections(self) -> int:
        """Count the client connections the broker process holds open now.

        Read from the kernel, not from MQTT: the broker's own sockets (/proc/<pid>/fd)
        that are TCP connections on its port and not the listener. A connection
        counts from its accept until the broker closes it, whatever MQTT stage it
        is in (before CONNECT, waiting for a CONNACK, never subscribed, idle).
        """
        pid = self.pid
        if pid is None:
            return 0
        sockets: set[str] = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    sockets.add(target.removeprefix("socket:[").rstrip("]"))
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for row in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                    fields = row.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    listening = fields[3] == "0A"  # TCP_LISTEN
                    if fields[9] in sockets and local_port == self.port:
                        count += not listening
        return count

    # -- process ------------------------------------------------------------------

    def _write_conf(self) -> None:
        template = CONF_TEMPLATE.read_text(encoding="utf-8")
        conf = template.format(
            # Running as root, mosquitto would switch to the "mosquitto" user, which
            # cannot read our files; "user <ourselves>" keeps it as it is.
            user=pwd.getpwuid(os.getuid()).pw_name,
            log_file=self._log_file,
            plugin=self._plugin,
            tokens_file=self._tokens_file,
            kick_on_deny="true" if self._kick_on_deny else "false",
            port=self.port,
            host=self._host,
            ca_file=self._ca_file,
            cert_file=self._cert_file,
            key_file=self._key_file,
        )
        self._conf_file.write_text(conf, encoding="utf-8")

    def start(self) -> None:
        """Start the broker; return once it completes a TLS handshake."""
        if self.running:
            return
        began = time.monotonic()
        fixed_port = self._port is not None
        for _attempt in range(5):
            if not fixed_port:
                self._port = _free_port(self._host)
            self._write_conf()
            with self._stderr_file.open("ab") as stderr:
                self._process = subprocess.Popen(  # noqa: S603
                    [self._mosquitto, "-c", str(self._conf_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,  # no terminal signals (Ctrl-C) to it
                )
            _LIVE.add(self)
            if self._wait_ready():
                self._wait_probe_closed()
                self.last_start_seconds = time.monotonic() - began
                return
            # The process exited. A port picked by us may have been taken in between:
            # pick another one; otherwise it is a real failure.
            if fixed_port or "Address already in use" not in self.log_text():
                break
        self._process = None
        msg = (
            f"mosquitto did not start on {self._host}:{self._port}:\n{self.log_tail()}"
        )
        raise RuntimeError(msg)

    def _wait_ready(self) -> bool:
        """Poll with real TLS handshakes; False if the process exited first."""
        assert self._process is not None
        context = self.ssl_context()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with (
                    socket.create_connection((self._host, self.port), timeout=1) as raw,
                    context.wrap_socket(raw, server_hostname=self._host),
                ):
                    return True
            except OSError, ssl.SSLError:
                time.sleep(0.01)
        self._terminate()
        msg = (
            f"mosquitto did not accept TLS within {START_TIMEOUT} s:\n{self.log_tail()}"
        )
        raise RuntimeError(msg)

    def _wait_probe_closed(self) -> None:
        """Wait until the broker has closed _wait_ready's connection (it counts)."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.client_connections():
            if time.monotonic() > deadline:
                msg = f"mosquitto kept the probe connection open:\n{self.log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.005)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and reap it."""
        self._terminate()

    def restart(self) -> None:
        """Stop, wait until the port is free, start again on the same port.

        Every client is disconnected; clients may reconnect to the same host:port.
        """
        self.stop()
        if self._port is not None:
            deadline = time.monotonic() + START_TIMEOUT
            while not _port_is_free(self._host, self._port):
                if time.monotonic() > deadline:
                    msg = f"port {self._port} stayed busy after mosquitto stopped"
                    raise RuntimeError(msg)
                time.sleep(0.01)
        self.start()

    def close(self) -> None:
        """Stop the broker and delete its work dir."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Start the broker."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the broker and remove its files."""
        self.close()

    def log_tail(self, lines: int = 200) -> str:
        """Return the last `lines` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])


@pytest.fixture
def mqtt_broker(
    socket_enabled: None, request: pytest.FixtureRequest
) -> Iterator[Broker]:
    """Yield a started Energydata.dk-like broker (TLS on 127.0.0.1:<free port>).

    Tokens: DEMO_TOKEN and READONLY_TOKEN, both granted DEMO_PREFIX ("dtu-b101").
    Connect with username=<token>, no password, MQTT 3.1.1, `ssl_context(broker)`.
    When the test fails, the broker's log is printed.
    """
    # The Home Assistant plugin blocks sockets; open loopback (as tests/conftest does).
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1"], allow_unix_socket=True)
    failed_before = request.session.testsfailed
    broker = Broker(DEFAULT_TOKENS)
    try:
        broker.start()
        yield broker
    finally:
        if request.session.testsfailed > failed_before:
            _dump_log(request, broker)
        broker.close()


@atexit.register
def _stop_leftovers() -> None:
    for broker in list(_LIVE):
        broker.stop()


def _dump_log(request: pytest.FixtureRequest, broker: Broker) -> None:
    """Write the broker log to the terminal, past pytest's output capture."""
    text = (
        f"\n---- mosquitto log ({request.node.nodeid}) ----\n"
        f"{broker.log_tail()}\n"
        "---- end of mosquitto log ----\n"
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        sys.stderr.write(text)
        sys.stderr.flush()
