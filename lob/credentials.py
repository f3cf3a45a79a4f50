"""Session credentials: the file the engine reads, and the HMAC-SHA256 signatures of Negotiate/Establish.

The file has one session per line; `#` starts a comment:

    # session-id  firm   secret (hex, at least 16 bytes)                                    options
    1001          ACME   6f1c0e9d4b2a8c7e5f3d1b9a7c5e3f1d2b4a6c8e0f2d4b6a8c0e2f4d6b8a0c2e   rate=50000 burst=100000
    1002          BETA   0d2f4b6a8c0e2f4d6b8a0c2e6f1c0e9d4b2a8c7e5f3d1b9a7c5e3f1d2b4a6c8e   cancel_on_disconnect=no

Options (all optional):
    rate=N                   messages per second the session may send (token bucket; 0 or absent: no limit)
    burst=N                  bucket size in messages (default: rate, at least 1)
    cancel_on_disconnect=B   yes/no (default yes): cancel the session's orders when it ends or its
                             publication goes away
    admin=B                  yes/no (default no): may send venue administration requests (instrument
                             state, end of day); others get NotAuthorized
    accounts=A,B,...         the accounts the session's orders may name; an order naming another is
                             rejected AccountNotPermitted (default, absent: any account)

A signature is HMAC-SHA256 under the session's secret over the canonical request: the request's fields
as decimal or text, joined by newlines (`negotiate_request` / `establish_request`). Secrets are compared
in constant time and never appear in a repr, an error or a log line.
"""
import hashlib
import hmac
from dataclasses import dataclass, field

MIN_SECRET_BYTES = 16
FIRM_LENGTH = 16
_BOOLEANS = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


class CredentialsError(ValueError):
    pass


@dataclass(frozen=True)
class SessionCredentials:
    session_id: int
    firm: str
    secret: bytes = field(repr=False)
    rate: int = 0
    burst: int = 0
    cancel_on_disconnect: bool = True
    admin: bool = False
    accounts: tuple = ()    # the accounts its orders may name, sorted; empty: any

    def __post_init__(self):
        if not 0 < self.session_id < 1 << 32:
            raise CredentialsError(f"session id {self.session_id} is outside 1..2**32-1")
        if not self.firm or len(self.firm.encode("ascii", "replace")) > FIRM_LENGTH or not self.firm.isprintable():
            raise CredentialsError(f"session {self.session_id}: firm must be 1..{FIRM_LENGTH} printable ASCII characters")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise CredentialsError(f"session {self.session_id}: the secret must have at least {MIN_SECRET_BYTES} bytes")
        if self.rate < 0 or self.burst < 0:
            raise CredentialsError(f"session {self.session_id}: rate and burst must not be negative")
        if self.rate and not self.burst:
            object.__setattr__(self, "burst", max(self.rate, 1))
        accounts = tuple(sorted(set(self.accounts)))
        if any(not 0 <= a < 1 << 32 for a in accounts):
            raise CredentialsError(f"session {self.session_id}: accounts must be in 0..2**32-1")
        object.__setattr__(self, "accounts", accounts)

    def sign_negotiate(self, request_timestamp, nonce, response_channel, response_stream_id):
        return sign(self.secret, negotiate_request(self.session_id, self.firm, request_timestamp, nonce,
                                                   response_channel, response_stream_id))

    def sign_establish(self, request_timestamp, keep_alive_ms, next_seq_no):
        return sign(self.secret, establish_request(self.session_id, request_timestamp, keep_alive_ms, next_seq_no))


def negotiate_request(session_id, firm, request_timestamp, nonce, response_channel, response_stream_id):
    return "\n".join(str(v) for v in (session_id, firm, request_timestamp, nonce, response_channel,
                                      response_stream_id)).encode("utf-8")


def establish_request(session_id, request_timestamp, keep_alive_ms, next_seq_no):
    return "\n".join(str(v) for v in (session_id, request_timestamp, keep_alive_ms, next_seq_no)).encode("utf-8")


def sign(secret, request):
    return hmac.new(secret, request, hashlib.sha256).digest()


def verify(secret, request, signature):
    return hmac.compare_digest(sign(secret, request), bytes(signature))


def parse(text, source="credentials"):
    """[SessionCredentials] from the file's text; CredentialsError names the line (never the secret)."""
    sessions, seen = [], set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{source}:{number}"
        if len(parts) < 3:
            raise CredentialsError(f"{where}: expected 'session-id firm secret [options]'")
        try:
            session_id = int(parts[0])
        except ValueError:
            raise CredentialsError(f"{where}: session id {parts[0]!r} is not a number") from None
        try:
            secret = bytes.fromhex(parts[2])
        except ValueError:
            raise CredentialsError(f"{where}: the secret is not hexadecimal") from None
        options = {}
        for option in parts[3:]:
            name, sep, value = option.partition("=")
            if not sep:
                raise CredentialsError(f"{where}: option {option!r} is not name=value")
            options[name] = value
        kwargs = {}
        try:
            for name, value in options.items():
                if name in ("rate", "burst"):
                    kwargs[name] = int(value)
                elif name == "accounts":
                    try:
                        kwargs[name] = tuple(int(a) for a in value.split(","))
                    except ValueError:
                        raise CredentialsError(f"{where}: accounts must be comma-separated account numbers, "
                                               f"not {value!r}") from None
                elif name in ("cancel_on_disconnect", "admin"):
                    if value.lower() not in _BOOLEANS:
                        raise CredentialsError(f"{where}: {name} must be yes or no")
                    kwargs[name] = _BOOLEANS[value.lower()]
                else:
                    raise CredentialsError(f"{where}: unknown option {name!r}")
            entry = SessionCredentials(session_id, parts[1], secret, **kwargs)
        except CredentialsError as exc:
            raise CredentialsError(f"{where}: {exc}") if not str(exc).startswith(where) else exc
        except ValueError:
            raise CredentialsError(f"{where}: rate and burst must be whole numbers") from None
        if session_id in seen:
            raise CredentialsError(f"{where}: session {session_id} appears twice")
        seen.add(session_id)
        sessions.append(entry)
    if not sessions:
        raise CredentialsError(f"{source}: no sessions")
    return sessions


def dumps(sessions):
    """The credentials file text for `sessions` (the inverse of parse)."""
    lines = ["# session-id  firm  secret (hex)  options"]
    for c in sessions:
        options = [f"rate={c.rate}", f"burst={c.burst}"] if c.rate else []
        if not c.cancel_on_disconnect:
            options.append("cancel_on_disconnect=no")
        if c.admin:
            options.append("admin=yes")
        if c.accounts:
            options.append("accounts=" + ",".join(map(str, c.accounts)))
        lines.append(" ".join([str(c.session_id), c.firm, c.secret.hex(), *options]))
    return "\n".join(lines) + "\n"


def load(path):
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), str(path))


def for_tests(session_ids, **options):
    """Credentials with secrets derived from the session id: for tests and benchmarks only."""
    return [SessionCredentials(int(i), f"FIRM{int(i)}"[:FIRM_LENGTH], hashlib.sha256(b"lob-test-%d" % int(i)).digest(),
                               **options) for i in session_ids]
