"""A real IMAP server for the tests: Dovecot 2.3 from Debian's packages, run on 127.0.0.1 from a
self-contained config in a temp directory.

- ``dovecot -F -c CONF`` with ``base_dir``, ``state_dir`` and ``log_path`` in the temp dir,
  ``passdb static`` (any user name, one password: a passwd-file is re-read at most once a second,
  too slow for a user per test), ``userdb static``, Maildir storage, ``chroot =`` for imap-login and anvil.
- As root it refuses uid 0 for login and mail processes, so those run as ``nobody`` and the temp
  dir is made world-readable (a 0700 dir blocks them); as an ordinary user everything runs as you.
- Readiness is the ``* OK`` greeting, not an open port.
- Two listeners: ``port`` (plain, STARTTLS offered) and ``tls_port`` (implicit TLS), both with a
  certificate from the tests' throwaway CA.

``CuttingProxy`` sits between a client and the server and cuts the connection after a given number
of bytes from the server: an IMAP connection dropped in the middle of a FETCH.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

HOST = "127.0.0.1"
PASSWORD = "imap-Passw0rd"
INSTALL_HINT = "Dovecot is not installed: apt-get install dovecot-imapd"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Mailbox:
    user: str
    password: str
    maildir: Path


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0  # and no anvil auth penalty (below): wrong-password tests stay fast
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:{root}/home/%u/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Processed {{
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    def __init__(self, cert: Path, key: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rm-dovecot-"))
        self.root.chmod(0o755)  # mail and login processes run as another user when we are root
        self.cert, self.key = cert, key
        self.port, self.tls_port = free_port(), free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid())
        mail = pwd.getpwnam("nobody") if root else me
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(exist_ok=True)
        os.chown(self.root / "home", mail.pw_uid, mail.pw_gid)
        (self.root / "dovecot.conf").write_text(CONFIG.format(
            root=self.root, host=HOST, cert=self.cert, key=self.key, port=self.port, tls_port=self.tls_port,
            uid=mail.pw_uid, gid=mail.pw_gid, password=PASSWORD,
            internal="dovecot" if root else me.pw_name, login="dovenull" if root else me.pw_name))

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    def start(self, timeout: float = 10.0) -> None:
        binary = dovecot_binary()
        assert binary, INSTALL_HINT
        self._process = subprocess.Popen([binary, "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._process.stderr.read().decode()} {self.log()}")  # type: ignore[union-attr]
            if _greets(self.port):
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"dovecot gave no greeting within {timeout} s: {self.log()}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # -- users and mail, as a test plays the outside world ------------------------------------
    def add_user(self, user: str) -> Mailbox:
        """Every user exists with the one password (``passdb static``), so a new user costs nothing."""
        return Mailbox(user, PASSWORD, self.root / "home" / user / "Maildir")

    def client(self, box: Mailbox) -> IMAPClient:
        client = IMAPClient(HOST, port=self.port, ssl=False, timeout=10)
        client.login(box.user, box.password)
        return client

    def append(self, box: Mailbox, raw: bytes, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> None:
        with self.client(box) as client:
            client.append(folder, raw, flags=flags)

    def messages(self, box: Mailbox, folder: str = "INBOX") -> dict[int, tuple[tuple[bytes, ...], bytes]]:
        """UID → (flags, raw) of every message in ``folder``, read without changing anything."""
        with self.client(box) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            data = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
            return {uid: (tuple(d[b"FLAGS"]), d[b"BODY[]"]) for uid, d in data.items()}

    def doveadm(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["doveadm", "-c", str(self.config), *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 or not check, done.stderr
        return done.stdout

    def set_uidvalidity(self, box: Mailbox, folder: str, value: int) -> None:
        """What a migration or a rebuilt index does: same messages, new UIDVALIDITY (and new UIDs)."""
        self.doveadm("kick", box.user, check=False)  # exit 68 when nobody was logged in
        self.doveadm("mailbox", "update", "-u", box.user, "--uid-validity", str(value), folder)


def _greets(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


class CuttingProxy:
    """TCP proxy on 127.0.0.1 to ``target``; after ``cut_after(n)``, a connection whose server side
    has sent n more bytes is closed in the middle of whatever it was sending."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._budget: int | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, n: int | None) -> None:
        with self._lock:
            self._budget = n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.target_port))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_server and self._spend(len(data)):
                    sink.sendall(data[: len(data) // 2])
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _spend(self, n: int) -> bool:
        """True when this chunk exhausts the budget: the connection is cut here."""
        with self._lock:
            if self._budget is None:
                return False
            self._budget -= n
            if self._budget > 0:
                return False
            self._budget, self.cuts = None, self.cuts + 1
            return True

    def close(self) -> None:
        self._listener.close()
