"""FTP and FTPS as customers run them: vsftpd, ProFTPD, IIS, FileZilla Server, pyftpdlib.

**Listing.** MLSD when the server advertises MLST in its FEAT answer (exact, machine-readable
facts); else LIST, whose lines are read by ftputil's parsers (the Unix ``ls -l`` format and the
MS-DOS/IIS one, with ftputil's rules for the missing year); else NLST, with SIZE and MDTM asked
per name. A LIST time has minutes or days only, so entries from it say ``precise=False`` and
``modified()`` asks MDTM (UTC, to the second) where the order of files matters. Before LIST the
client changes into the folder: vsftpd answers a LIST of a missing folder with an empty listing,
and CWD is what tells "missing" from "empty".

**Existence** is asked with CWD (a folder), then SIZE or MDTM (a file): a failed listing is
never taken for "missing", and a missing folder is made only after the server said it is
missing.

**TLS.** Explicit (AUTH TLS) or implicit (TLS from the first byte, port 990). Data connections
reuse the control connection's TLS session, which vsftpd requires by default
(``require_ssl_reuse``). A connection trusts the system's CAs plus its own CA certificate, or
exactly one certificate given by its SHA-256 fingerprint (checked on every connection); a
certificate that fails verification is reported with its fingerprint, so that the analyst can
pin it.

**Messages** name the command that failed, the server's answer and what to do.
"""

from __future__ import annotations

import contextlib
import ftplib
import hashlib
import posixpath
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, TypeVar

from studio.config.connections import FileServerConnection
from studio.files import Entry, FileClient, FileServerError, network_failure, relative

T = TypeVar("T")

# Answers that mean "this server does not have that command" rather than "that failed".
_UNSUPPORTED = ("500", "501", "502", "504")
_TLS_REQUIRED = re.compile(r"tls|ssl|encrypt|secur", re.I)


def certificate_fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).digest()
    return ":".join(f"{b:02X}" for b in digest)


def tls_context(conn: FileServerConnection, *, verify: bool | None = None) -> ssl.SSLContext:
    """The system's CAs plus the connection's own; no verification when a fingerprint pins
    the certificate (checked after the handshake) or when verification is off."""
    context = ssl.create_default_context()
    if conn.ca_certificate:
        context.load_verify_locations(cadata=conn.ca_certificate)
    if verify is None:
        verify = conn.verify_tls and not conn.tls_fingerprint
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Session(ftplib.FTP_TLS):
    """ftplib's FTP_TLS with what real servers need: implicit TLS, data connections that reuse
    the control connection's TLS session, and the certificate pin checked on each of them.
    Without ``tls`` it is plain FTP (FTP_TLS only adds to FTP what it is asked to)."""

    def __init__(self, conn: FileServerConnection, context: ssl.SSLContext, timeout: float):
        super().__init__(context=context, timeout=timeout)
        self.tls = conn.protocol == "ftps"
        self.implicit = self.tls and conn.ftps_mode == "implicit"
        self.pin = conn.tls_fingerprint

    def connect(self, host: str = "", port: int = 0, *args, **kwargs) -> str:
        if not self.implicit:
            return super().connect(host, port, *args, **kwargs)
        # ftplib has no implicit TLS: wrap the socket before the server's greeting is read.
        self.host, self.port = host, port
        raw = socket.create_connection((host, port), self.timeout)
        self.af = raw.family
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.check_pin(self.sock)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def auth(self) -> str:
        answer = super().auth()
        self.check_pin(self.sock)
        return answer

    def ntransfercmd(self, cmd: str, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
            self.check_pin(conn)
        return conn, size

    def check_pin(self, sock: ssl.SSLSocket) -> None:
        if not self.pin:
            return
        der = sock.getpeercert(binary_form=True)
        if der is not None and certificate_fingerprint(der) != self.pin:
            got = certificate_fingerprint(der)
            sock.close()
            raise FileServerError(
                f"The TLS certificate of {self.host}:{self.port} has the fingerprint {got}, "
                f"not the pinned {self.pin}: if the server's certificate was renewed, pin the "
                "new fingerprint; otherwise something is impersonating the server"
            )


def _code(e: BaseException) -> str:
    return str(e).strip()[:3]


class FtpClient(FileClient):
    def __init__(self, conn: FileServerConnection, timeout: float = 30.0):
        super().__init__(conn)
        self.timeout = timeout
        self.ftp = self._login(conn, tls_context(conn), timeout)
        self.features = self._features()
        self.mlsd_ok = "MLST" in self.features
        self.list_ok = True
        if "UTF8" in self.features:
            with contextlib.suppress(ftplib.Error, OSError):
                self.ftp.sendcmd("OPTS UTF8 ON")

    # --- session -----------------------------------------------------------------------------

    def _login(self, conn: FileServerConnection, context: ssl.SSLContext, timeout: float):
        where = f"{conn.host}:{conn.port}"
        ftp = _Session(conn, context, timeout)
        step = "start TLS with" if ftp.implicit else "connect to"
        try:
            ftp.connect(conn.host, conn.port)
            if ftp.tls and not ftp.implicit:
                step = "start TLS with"
                try:
                    ftp.auth()
                except ftplib.error_perm as e:
                    raise FileServerError(
                        f"{where} does not offer TLS: AUTH TLS was answered {str(e).strip()!r}. "
                        "Choose plain FTP if the partner allows it, or FTPS mode 'implicit' "
                        "if the server speaks TLS from the first byte (usually port 990)"
                    ) from None
            step = "log in to"
            ftp.login(conn.username, conn.password, secure=False)
            if ftp.tls:
                ftp.prot_p()  # encrypt the data connections too
            ftp.set_pasv(conn.passive)
        except FileServerError:
            ftp.close()
            raise
        except ftplib.error_perm as e:
            ftp.close()
            raise self._login_error(where, ftp.tls, e) from None
        except ssl.SSLCertVerificationError as e:
            ftp.close()
            raise FileServerError(self._untrusted(conn, e, timeout)) from None
        except ssl.SSLError as e:
            ftp.close()
            raise FileServerError(f"TLS with {where} failed: {e.reason or e}") from None
        except EOFError:
            ftp.close()
            hint = (
                " (does it expect implicit TLS? then choose FTPS, mode 'implicit')"
                if step == "connect to"
                else ""
            )
            raise FileServerError(
                f"{where} closed the connection while we tried to {step} it{hint}"
            ) from None
        except (OSError, ftplib.Error) as e:
            greeted = getattr(ftp, "welcome", None)
            connected = ftp.sock is not None
            ftp.close()
            if isinstance(e, TimeoutError) and connected and not greeted and not ftp.implicit:
                raise FileServerError(
                    f"{where} accepted the connection but sent no FTP greeting within "
                    f"{timeout:g} s: if it expects implicit TLS (usually on port 990), choose "
                    "FTPS, mode 'implicit'"
                ) from None
            raise FileServerError(network_failure(step, conn, e)) from None
        return ftp

    def _login_error(self, where: str, tls: bool, e: ftplib.Error) -> FileServerError:
        text = str(e).strip()
        if not tls and (_code(e) == "534" or _TLS_REQUIRED.search(text)):
            return FileServerError(
                f"Login to {where} failed: the server requires TLS: choose FTPS "
                f"(it answered {text!r})"
            )
        if _code(e) == "530":
            return FileServerError(
                f"Login to {where} failed: wrong user name or password (the server answered "
                f"{text!r})"
            )
        return FileServerError(f"Login to {where} failed: the server answered {text!r}")

    def _untrusted(self, conn: FileServerConnection, e: ssl.SSLCertVerificationError, timeout):
        where = f"{conn.host}:{conn.port}"
        reason = e.verify_message or e.reason or str(e)
        found = ""
        with contextlib.suppress(Exception):  # only to say which certificate it was
            probe = _Session(
                conn.model_copy(update={"tls_fingerprint": ""}),
                tls_context(conn, verify=False),
                min(timeout, 10),
            )
            try:
                probe.connect(conn.host, conn.port)
                if not probe.implicit:
                    probe.auth()
                der = probe.sock.getpeercert(binary_form=True)
                found = f" (its SHA-256 fingerprint is {certificate_fingerprint(der)})"
            finally:
                probe.close()
        return (
            f"TLS with {where} failed: the server's certificate is not trusted: {reason}{found}. "
            "If it is the partner's certificate, paste its fingerprint into 'Certificate "
            "fingerprint' or its CA into 'CA certificate'"
        )

    def _features(self) -> set[str]:
        try:
            answer = self.ftp.sendcmd("FEAT")
        except (ftplib.Error, OSError):
            return set()  # servers older than RFC 2389 answer 500
        return {
            line.strip().split(" ")[0].upper() for line in answer.splitlines()[1:-1] if line.strip()
        }

    def _do(self, command: str, where: str, fn: Callable[[], T]) -> T:
        """Run one FTP command; its failure becomes a sentence naming the command, the
        server's answer and what to do."""
        try:
            return fn()
        except (ftplib.Error, OSError, EOFError, UnicodeDecodeError) as e:
            raise self._failure(command, where, e) from None

    def _failure(self, command: str, where: str, e: BaseException) -> FileServerError:
        if isinstance(e, ftplib.error_perm):
            return self._error(command, where, e)
        if isinstance(e, ftplib.Error):
            return FileServerError(
                f"{command} {where} failed: the server answered {str(e).strip()!r}"
            )
        if isinstance(e, UnicodeDecodeError):
            return FileServerError(
                f"{command} {where} failed: the server sent names that are not UTF-8"
            )
        return FileServerError(
            f"{command} {where} failed: the connection broke ({e or type(e).__name__})"
        )

    def _error(self, command: str, where: str, e: ftplib.Error) -> FileServerError:
        text, code = str(e).strip(), _code(e)
        verb = command.split()[0]
        if code in _UNSUPPORTED:
            hint = f": the server does not support {verb}"
        elif code in ("550", "553", "450") and verb in ("RETR", "CWD", "LIST", "MLSD"):
            hint = ": not found, or not readable by this user"
        elif code in ("550", "553", "450", "552") and verb in ("STOR", "MKD", "RNFR", "RNTO"):
            folder = posixpath.dirname(where.split("://", 1)[-1].split("/", 1)[-1] or "/")
            hint = (
                f": check that user {self.conn.username!r} may write to /{folder.lstrip('/')}"
                if verb != "RNFR"
                else ": not found, or not movable by this user"
            )
        elif code == "550" and verb == "DELE":
            hint = ": not found, or not deletable by this user"
        else:
            hint = ""
        return FileServerError(f"{command} {where} failed{hint} (the server answered {text!r})")

    def where_full(self, full: str) -> str:
        return f"{self.conn.protocol}://{self.conn.host}:{self.conn.port}{full}"

    # --- listing -----------------------------------------------------------------------------

    def list(self, folder: str = "") -> list[Entry]:
        full = self.path(folder)
        where = self.where(folder)
        if self.mlsd_ok:
            try:
                facts = list(self.capped(self.ftp.mlsd(full, ["type", "size", "modify"]), where))
            except ftplib.error_perm as e:
                if _code(e) not in _UNSUPPORTED:
                    raise self._error("MLSD", where, e) from None
                self.mlsd_ok = False  # advertised, then refused: LIST it is
            except (OSError, EOFError, ftplib.Error, UnicodeDecodeError) as e:
                raise self._failure("MLSD", where, e) from None
            else:
                return self._sorted(self._from_mlsd(full, facts))
        self._do("CWD", where, lambda: self.ftp.cwd(full))
        if self.list_ok:
            lines: list[str] = []
            try:
                self.ftp.retrlines("LIST", self._collect(lines, where))
            except ftplib.error_perm as e:
                if _code(e) not in _UNSUPPORTED:
                    raise self._error("LIST", where, e) from None
                self.list_ok = False
            except (OSError, EOFError, ftplib.Error, UnicodeDecodeError) as e:
                raise self._failure("LIST", where, e) from None
            else:
                return self._sorted(self._from_list(full, where, lines))
        names: list[str] = []
        self._do("NLST", where, lambda: self.ftp.retrlines("NLST", self._collect(names, where)))
        return self._sorted(self._from_nlst(full, names))

    def _collect(self, into: list[str], where: str) -> Callable[[str], None]:
        """A ``retrlines`` callback that keeps the lines, at most ``max_entries`` of them."""

        def keep(line: str) -> None:
            if len(into) >= self.max_entries:
                raise self.too_many(where)
            into.append(line)

        return keep

    def _entry(self, full: str, name: str, is_dir: bool, size, modified, precise=True) -> Entry:
        return Entry(
            name, relative(self.root, posixpath.join(full, name)), is_dir, size, modified, precise
        )

    @staticmethod
    def _sorted(entries: list[Entry]) -> list[Entry]:
        return sorted(entries, key=lambda e: e.name)

    def _from_mlsd(self, full: str, facts) -> list[Entry]:
        out = []
        for name, f in facts:
            kind = f.get("type", "").lower()
            if kind in ("cdir", "pdir") or name in (".", ".."):
                continue
            out.append(
                self._entry(
                    full,
                    name,
                    kind == "dir",
                    int(f["size"]) if f.get("size", "").isdigit() else None,
                    _mdtm_time(f.get("modify", "")),
                )
            )
        return out

    def _from_list(self, full: str, where: str, lines: list[str]) -> list[Entry]:
        out = []
        for name, is_dir, size, modified in parse_list(lines, where):
            if name in (".", ".."):
                continue
            out.append(self._entry(full, name, is_dir, size, modified, precise=False))
        return out

    def _from_nlst(self, full: str, names: list[str]) -> list[Entry]:
        out = []
        for raw in names:
            name = posixpath.basename(raw.rstrip("/"))
            if name in (".", "..", ""):
                continue
            path = posixpath.join(full, name)
            size = self._size(path)
            is_dir = size is None and self._is_folder(path)
            modified = None if is_dir else self._mdtm(path)
            out.append(self._entry(full, name, is_dir, size, modified))
        return out

    # --- single facts ------------------------------------------------------------------------

    def _size(self, full: str) -> int | None:
        """SIZE (in binary mode: some servers refuse it in ASCII); None if not a file."""
        try:
            self.ftp.voidcmd("TYPE I")
            return int(self.ftp.sendcmd(f"SIZE {full}").split()[1])
        except ftplib.error_perm as e:
            if _code(e) in _UNSUPPORTED and "SIZE" in self.features:
                raise self._error("SIZE", self.where_full(full), e) from None
            return None
        except (ValueError, IndexError):
            return None

    def _mdtm(self, full: str) -> datetime | None:
        try:
            return _mdtm_time(self.ftp.sendcmd(f"MDTM {full}").split()[-1])
        except (ftplib.error_perm, IndexError):
            return None

    def _is_folder(self, full: str) -> bool:
        try:
            self.ftp.cwd(full)
            return True
        except ftplib.error_perm as e:
            if _code(e) in ("550", "553", "450"):
                return False
            raise self._error("CWD", self.where_full(full), e) from None

    def modified(self, path: str) -> datetime | None:
        if "MDTM" not in self.features:
            return None
        return self._mdtm(self.path(path))

    def _exists(self, full: str) -> bool:
        if full == "/":
            return True
        where = self.where_full(full)
        try:
            if self._is_folder(full):
                return True
        except (OSError, EOFError, ftplib.Error) as e:
            raise self._failure("CWD", where, e) from None
        for command in ("SIZE", "MDTM"):
            try:
                self.ftp.voidcmd("TYPE I")
                self.ftp.sendcmd(f"{command} {full}")
                return True
            except ftplib.error_perm as e:
                if _code(e) in ("550", "553", "450"):
                    return False  # RFC 3659: 550 is "no such file"
                if _code(e) not in _UNSUPPORTED:
                    raise self._error(command, where, e) from None
            except (OSError, EOFError, ftplib.Error) as e:
                raise self._failure(command, where, e) from None
        # Neither SIZE nor MDTM: ask the parent's listing, which raises if it cannot be read.
        parent, name = posixpath.split(full.rstrip("/"))
        return any(e.name == name for e in self.list(parent or "/"))

    # --- transfers and changes ---------------------------------------------------------------

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        full = self.path(path)
        where = self.where(path)

        def start():
            self.ftp.voidcmd("TYPE I")
            return self.ftp.transfercmd(f"RETR {full}")

        conn = self._do("RETR", where, start)
        stream = conn.makefile("rb")
        complete = False
        try:
            yield stream
            complete = True
        finally:
            stream.close()
            with contextlib.suppress(OSError, ValueError):
                if isinstance(conn, ssl.SSLSocket) and complete:
                    conn.settimeout(min(self.timeout, 5))
                    conn.unwrap()
            conn.close()
            with contextlib.suppress(ftplib.Error, OSError, EOFError):
                self.ftp.voidresp()  # 226, or 426 when we stopped reading early

    def _put(self, stream: IO[bytes], full: str) -> None:
        self._do("STOR", self.where_full(full), lambda: self.ftp.storbinary(f"STOR {full}", stream))

    def _rename(self, src: str, dst: str) -> None:
        self._do(
            f"RNFR {src} RNTO",
            self.where_full(dst),
            lambda: self.ftp.rename(src, dst),
        )

    def _mkdir(self, full: str) -> None:
        self._do("MKD", self.where_full(full), lambda: self.ftp.mkd(full))

    def _delete(self, full: str) -> None:
        self._do("DELE", self.where_full(full), lambda: self.ftp.delete(full))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ftp.quit()
        with contextlib.suppress(Exception):
            self.ftp.close()


def _mdtm_time(value: str) -> datetime | None:
    """``YYYYMMDDHHMMSS[.sss]`` (MDTM and MLSD's modify fact, always UTC)."""
    try:
        return datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_list(
    lines: list[str], where: str = "the folder"
) -> list[tuple[str, bool, int | None, datetime | None]]:
    """(name, is folder, size, modified) of each line of a LIST answer, in the Unix ``ls -l``
    format or the MS-DOS/IIS one, parsed by ftputil (which guesses the missing year the way
    ``ls`` means it). Times are taken as UTC, as vsftpd and most Unix servers send them."""
    import stat as stat_module
    import warnings

    with warnings.catch_warnings():  # ftputil warns of its 6.0 path encoding on import
        warnings.simplefilter("ignore", DeprecationWarning)
        import ftputil.error
        import ftputil.stat

    lines = [line for line in lines if line.strip()]
    errors = []
    for parser in (ftputil.stat.UnixParser(), ftputil.stat.MSParser()):
        out = []
        try:
            for line in lines:
                if parser.ignores_line(line):
                    continue
                st = parser.parse_line(line)
                out.append(
                    (
                        st._st_name,
                        stat_module.S_ISDIR(st.st_mode or 0),
                        st.st_size,
                        datetime.fromtimestamp(st.st_mtime, UTC) if st.st_mtime else None,
                    )
                )
            return out
        except ftputil.error.ParserError as e:
            errors.append(str(e))
    first = lines[0] if lines else ""
    raise FileServerError(
        f"LIST {where}: the listing is in a format this client does not read (neither Unix "
        f"ls -l nor MS-DOS/IIS); its first line: {first[:120]!r}"
    )
