#!/usr/bin/env python3
"""Independent reference implementation of the @palyra/vault folder format
(docs/FORMAT.md sections 1-5), for interoperability tests. Python 3 standard library
plus the `cryptography` package; it shares no code with the TypeScript.

Usage:
    palyra_vault_ref.py --root VAULT_DIR (--identity-dir DIR | --kek-hex HEX) get <scope> <key>
    palyra_vault_ref.py --root VAULT_DIR (--identity-dir DIR | --kek-hex HEX) put <scope> <key>  < value
    palyra_vault_ref.py --root VAULT_DIR [--identity-dir DIR | --kek-hex HEX] list

get   writes the exact value bytes to stdout.
put   stores all of stdin's bytes (an aes_256_gcm envelope with a fresh DEK and nonces),
      under the scope's lock, atomically and durably.
list  prints one JSON document [{"scope","key","created_at_unix_ms","updated_at_unix_ms",
      "value_bytes"}] from every scope's index (scopes/*/metadata.json and metadata.log), sorted
      by scope then key (in UTF-16 code-unit order, like JavaScript's string comparison).

Scopes are taken as already canonical (`global`, `ws:acme`, `pr:alice`); no parsing is done.
Exit codes: 0 success, 1 operational error (message on stderr), 2 usage error.

Limits (it is a test tool): it only reads and writes the encrypted_file backend, and it never
reclaims a stale lock; it waits up to --lock-timeout-ms (default 5000) and then fails.
"""

import argparse
import base64
import errno
import hashlib
import json
import os
import random
import re
import socket
import stat
import sys
import time
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DIR_MODE = 0o700
FILE_MODE = 0o600
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
KEY_RE = re.compile(r"^[a-z0-9._-]{1,128}$")
OBJECT_ID_RE = re.compile(r"^obj_[0-9a-f]{64}$")
SCOPE_DIR_RE = re.compile(r"^s_[0-9a-f]{32}$")
AEADS = {"aes_256_gcm": AESGCM, "chacha20_poly1305": ChaCha20Poly1305}
ENVELOPE_B64_FIELDS = (
    "aad_b64",
    "secret_nonce_b64",
    "secret_ciphertext_b64",
    "secret_mac_b64",
    "dek_nonce_b64",
    "dek_ciphertext_b64",
    "dek_mac_b64",
)


class Failure(Exception):
    """An operational error: exit 1 with `error: <code>: <message>` on stderr."""

    def __init__(self, message: str, code: str = "io"):
        super().__init__(message)
        self.code = code


# --- encodings and names (FORMAT.md sections 1-3) -------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64encode(data: bytes) -> str:
    """Standard alphabet, no '=' padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text, field: str) -> bytes:
    """Strict: canonical unpadded standard base64 only."""
    if not isinstance(text, str) or "=" in text or len(text) % 4 == 1:
        raise Failure(f"open envelope failed: field {field!r} is missing or not unpadded base64", "crypto")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, TypeError):
        raise Failure(f"open envelope failed: field {field!r} is not unpadded base64", "crypto") from None
    if b64encode(data) != text:
        raise Failure(f"open envelope failed: field {field!r} is not canonical base64", "crypto")
    return data


def envelope_aad(scope: str, key: str) -> bytes:
    return f"palyra.vault.v1|{scope}|{key}".encode("utf-8")


def object_id(scope: str, key: str) -> str:
    return "obj_" + sha256(b"palyra.vault.object.v1" + scope.encode("utf-8") + b"\x00" + key.encode("utf-8")).hex()


def scope_dir_name(scope: str) -> str:
    return "s_" + sha256(b"palyra.vault.scope.v1" + scope.encode("utf-8")).hex()[:32]


def derive_kek(seed: bytes) -> bytes:
    ikm = sha256(seed)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"palyra.vault.kek.v1",
                info=b"envelope:kek").derive(ikm)


def kek_id(kek: bytes) -> str:
    return sha256(b"palyra.vault.kek-id.v1" + kek)[:8].hex()


# --- KEK from the command line or the identity folder (FORMAT.md sections 2, 4) ------------

def read_json_file(path: str, code: str):
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Failure(f"read {path!r} failed: {e.strerror}", code) from None
    with os.fdopen(fd, "rb") as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"read {path!r} failed: not valid UTF-8 JSON", code) from None


def kek_from_identity(identity_dir: str) -> bytes:
    # Palyra's identity store (hex-named items, IDS1 under .store-key.v1) is read by the
    # identity store reference beside this file; the 0.1 plaintext files below are read here.
    if any(os.path.exists(os.path.join(identity_dir, n.encode("utf-8").hex()))
           for n in ("identity/state.v1.json", "identity/ca/state.json")):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import palyra_state_ref
        try:
            return palyra_state_ref.IdentityStore(identity_dir).kek()
        except palyra_state_ref.Failure as e:
            raise Failure(str(e), "identity")
    state_path = os.path.join(identity_dir, "state.v1.json")
    legacy_path = os.path.join(identity_dir, "ca", "state.json")
    doc = read_json_file(state_path, "identity")
    if doc is not None:
        path = state_path
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise Failure(f"read identity {path!r} failed: not a version 1 identity", "identity")
        ca = doc.get("ca")
        pem = ca.get("private_key_pem") if isinstance(ca, dict) else None
    else:
        doc = read_json_file(legacy_path, "identity")
        if doc is None:
            raise Failure(f"read identity failed: neither {state_path!r} nor {legacy_path!r} exists", "identity")
        path = legacy_path
        pem = doc.get("private_key_pem") if isinstance(doc, dict) else None
    if not isinstance(pem, str):
        raise Failure(f"read identity {path!r} failed: the field \"private_key_pem\" is missing", "identity")
    if not pem.strip():
        raise Failure(f"read identity {path!r} failed: the field \"private_key_pem\" is empty", "identity")
    # The seed is the PEM exactly as stored (after JSON decoding), no normalisation.
    return derive_kek(pem.encode("utf-8"))


# --- envelope (FORMAT.md section 3) ---------------------------------------------------------

def seal(kek: bytes, scope: str, key: str, value: bytes) -> bytes:
    aad = envelope_aad(scope, key)
    dek = bytearray(os.urandom(KEY_BYTES))
    secret_nonce = os.urandom(NONCE_BYTES)
    dek_nonce = os.urandom(NONCE_BYTES)
    try:
        secret = AESGCM(bytes(dek)).encrypt(secret_nonce, value, aad)
        wrapped = AESGCM(kek).encrypt(dek_nonce, bytes(dek), aad)
    finally:
        for i in range(len(dek)):
            dek[i] = 0
    envelope = {
        "version": 1,
        "algorithm": "aes_256_gcm",
        "kek_id": kek_id(kek),
        "aad_b64": b64encode(aad),
        "secret_nonce_b64": b64encode(secret_nonce),
        "secret_ciphertext_b64": b64encode(secret[:-TAG_BYTES]),
        "secret_mac_b64": b64encode(secret[-TAG_BYTES:]),
        "dek_nonce_b64": b64encode(dek_nonce),
        "dek_ciphertext_b64": b64encode(wrapped[:-TAG_BYTES]),
        "dek_mac_b64": b64encode(wrapped[-TAG_BYTES:]),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def open_envelope(kek: bytes, scope: str, key: str, data: bytes) -> bytes:
    where = f"scope {scope!r} key {key!r}"
    try:
        env = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"open secret for {where} failed: the object is not valid UTF-8 JSON", "crypto") from None
    if not isinstance(env, dict):
        raise Failure(f"open secret for {where} failed: the object is not an envelope", "crypto")
    if env.get("version") != 1 or isinstance(env.get("version"), bool):
        raise Failure(f"open secret for {where} failed: unsupported version {env.get('version')!r}", "crypto")
    algorithm = env.get("algorithm")
    if algorithm not in AEADS:
        raise Failure(f"open secret for {where} failed: unsupported algorithm {algorithm!r}", "crypto")
    fields = {name: b64decode(env.get(name), name) for name in ENVELOPE_B64_FIELDS}
    if fields["aad_b64"] != envelope_aad(scope, key):
        raise Failure(f"open secret for {where} failed: the object was sealed for another scope or key "
                      "(AAD mismatch)", "crypto")
    expected_lengths = {
        "secret_nonce_b64": NONCE_BYTES,
        "dek_nonce_b64": NONCE_BYTES,
        "secret_mac_b64": TAG_BYTES,
        "dek_mac_b64": TAG_BYTES,
        "dek_ciphertext_b64": KEY_BYTES,
    }
    for name, n in expected_lengths.items():
        if len(fields[name]) != n:
            raise Failure(f"open secret for {where} failed: field {name!r} is {len(fields[name])} bytes, "
                          f"expected {n}", "crypto")
    aead = AEADS[algorithm]
    aad = fields["aad_b64"]
    try:
        dek = aead(kek).decrypt(fields["dek_nonce_b64"], fields["dek_ciphertext_b64"] + fields["dek_mac_b64"], aad)
    except InvalidTag:
        stored = env.get("kek_id")
        hint = ""
        if isinstance(stored, str) and stored != kek_id(kek):
            hint = f" (sealed with kek_id {stored!r}, this key is {kek_id(kek)!r})"
        raise Failure(f"open secret for {where} failed: authentication of the data key failed{hint}",
                      "crypto") from None
    try:
        return aead(dek).decrypt(fields["secret_nonce_b64"],
                                 fields["secret_ciphertext_b64"] + fields["secret_mac_b64"], aad)
    except InvalidTag:
        raise Failure(f"open secret for {where} failed: authentication of the value failed", "crypto") from None


# --- files (FORMAT.md sections 5, 5.2) ------------------------------------------------------

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str) -> None:
    """Creates `path` (and missing parents) with mode 0700; refuses a symbolic link."""
    path = os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if parent != path:
            ensure_dir(parent)
        try:
            os.mkdir(path, DIR_MODE)
            os.chmod(path, DIR_MODE)  # whatever the umask
            fsync_dir(parent)
        except FileExistsError:
            pass
        st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise Failure(f"open folder {path!r} failed: it is not a folder (or it is a symbolic link)", "permission")


def read_file(path: str):
    """The bytes of `path`, None when absent; never follows a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Failure(f"read {path!r} failed: it is a symbolic link", "permission") from None
        raise Failure(f"read {path!r} failed: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def write_all_durably(fd: int, data: bytes) -> None:
    """Writes every byte (os.write may write fewer), then fsyncs."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def write_file_atomic(path: str, data: bytes) -> None:
    """Temporary file in the same folder (exclusive, 0600), fsync, rename over, fsync folder."""
    folder = os.path.dirname(path)
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise Failure(f"write {path!r} failed: it is a symbolic link", "permission")
    except FileNotFoundError:
        pass
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            write_all_durably(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(folder)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(os.path.dirname(path))


def create_once(root: str, name: str, data: bytes) -> None:
    """Creates root/name holding `data` unless it exists; it appears whole or not at all."""
    tmp = os.path.join(root, f".{name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, os.path.join(root, name))  # EEXIST when another writer won
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    fsync_dir(root)


def check_backend(root: str, create: bool, kek: bytes = b"") -> None:
    """Only the encrypted_file backend keeps envelopes in objects/; a new vault records it, and its key (5.7)."""
    path = os.path.join(root, "backend.kind")
    data = read_file(path)
    if data is None:
        if not create:
            return
        create_once(root, "kek.id", kek_id(kek).encode())
        create_once(root, "backend.kind", b"encrypted_file\n")
        data = read_file(path)
    kind = data.decode("utf-8", "replace").strip()
    if kind != "encrypted_file":
        raise Failure(f"open vault {root!r} failed: its backend is {kind!r}; this tool reads only encrypted_file",
                      "backend_unavailable")


def check_kek_record(root: str, kek: bytes, action: str) -> None:
    """FORMAT.md section 5.7: a vault whose kek.id names another key refuses what this key would seal."""
    data = read_file(os.path.join(root, "kek.id"))
    if data is None:
        return
    recorded = data.decode("utf-8", "replace").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{16}", recorded):
        raise Failure(f"{action} failed: kek.id does not hold a kek_id", "corrupt")
    if recorded != kek_id(kek):
        raise Failure(f"{action} failed: the vault is sealed with kek_id {recorded}, not {kek_id(kek)}", "identity")


# --- lock (FORMAT.md section 5.4) ----------------------------------------------------------

class ScopeLock:
    """The lock folder: a private folder holding our marker, renamed into place; released by
    unlinking our marker, then removing the folder if it is empty."""

    def __init__(self, path: str, timeout_ms: int):
        self.path = path
        self.timeout_ms = timeout_ms
        self.nonce = ""

    def __enter__(self):
        host = re.sub(r"\s", "_", socket.gethostname() or "unknown-host")
        try:  # the PID namespace, after the host name (FORMAT.md section 5.4)
            host += f"@pidns:{os.stat('/proc/self/ns/pid').st_ino}"
        except OSError:
            pass
        deadline = time.monotonic() + self.timeout_ms / 1000
        delay = 0.001
        while True:
            self.nonce = os.urandom(8).hex()
            private = f"{self.path}.{self.nonce}.tmp"
            os.mkdir(private, DIR_MODE)
            content = f"pid={os.getpid()} host={host} ts_ms={int(time.time() * 1000)} nonce={self.nonce}\n"
            fd = os.open(os.path.join(private, self.nonce), os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                os.write(fd, content.encode("ascii"))
            finally:
                os.close(fd)
            try:
                os.rename(private, self.path)
                return self
            except OSError as e:
                os.unlink(os.path.join(private, self.nonce))
                os.rmdir(private)
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise
            if time.monotonic() >= deadline:
                raise Failure(f"take lock {self.path!r} failed: timed out after {self.timeout_ms} ms",
                              "lock_timeout") from None
            time.sleep(delay * (0.5 + random.random()))  # jittered back-off, 1 ms doubling to 25 ms
            delay = min(delay * 2, 0.025)

    def __exit__(self, *exc):
        try:
            os.unlink(os.path.join(self.path, self.nonce))
        except FileNotFoundError:
            return False  # someone judged us stale and removed us: the folder is not ours
        try:
            os.rmdir(self.path)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
        return False


# --- index (FORMAT.md section 5.1) ----------------------------------------------------------
#
# A scope's index is a snapshot (metadata.json, version 1 or 2) and, for version 2, a log of the
# changes since it (metadata.log): a header line naming the snapshot's generation, then one record
# per change, each line "<crc32 as 8 hex> <json>\n". A torn last line is ignored.

SNAPSHOT = "metadata.json"
LOG = "metadata.log"
COMPACT_MIN_RECORDS = 256


def is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def entry_of(key, created, updated, value_bytes) -> dict:
    return {"key": key, "created_at_unix_ms": created, "updated_at_unix_ms": updated, "value_bytes": value_bytes}


def parse_snapshot(path: str, data: bytes, scope):
    """(version, scope, generation, {key: entry}) of a snapshot of version 1 or 2."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"read index {path!r} failed: not valid UTF-8 JSON", "corrupt") from None
    if not isinstance(doc, dict) or doc.get("version") not in (1, 2) or not isinstance(doc.get("entries"), list):
        raise Failure(f"read index {path!r} failed: not a version 1 or 2 index", "corrupt")
    named = doc.get("scope")
    if not isinstance(named, str) or (scope is not None and named != scope):
        raise Failure(f"read index {path!r} failed: it names scope {named!r}, expected {scope!r}", "corrupt")
    version = doc["version"]
    generation = doc.get("generation") if version == 2 else 0
    if not is_count(generation) or (version == 2 and generation < 1):
        raise Failure(f"read index {path!r} failed: bad generation", "corrupt")
    entries = {}
    previous = None
    for i, e in enumerate(doc["entries"]):
        if version == 2:
            ok = (isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) and KEY_RE.match(e[0])
                  and all(is_count(x) for x in e[1:]))
            entry = entry_of(*e) if ok else None
        else:
            ok = (isinstance(e, dict) and isinstance(e.get("key"), str) and KEY_RE.match(e["key"])
                  and isinstance(e.get("object_id"), str) and OBJECT_ID_RE.match(e["object_id"]) is not None
                  and all(is_count(e.get(f)) for f in ("created_at_unix_ms", "updated_at_unix_ms", "value_bytes")))
            entry = entry_of(e["key"], e["created_at_unix_ms"], e["updated_at_unix_ms"], e["value_bytes"]) if ok else None
        if entry is None:
            raise Failure(f"read index {path!r} failed: entry {i} is malformed", "corrupt")
        if previous is not None and not previous < entry["key"]:
            raise Failure(f"read index {path!r} failed: entries are not sorted by key, or repeat one", "corrupt")
        previous = entry["key"]
        entries[entry["key"]] = entry
    return version, named, generation, entries


def log_line(doc) -> bytes:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def parse_log(path: str, data: bytes, scope):
    """(scope, generation, records, torn_bytes); a damaged line before the last one is corrupt."""
    lines = data.split(b"\n")
    header = None
    records = []
    consumed = 0
    for i, raw in enumerate(lines):
        complete = i < len(lines) - 1  # the piece after the last newline has none
        if not complete and raw == b"":
            break
        last = not complete or (i == len(lines) - 2 and lines[-1] == b"")
        doc = None
        if complete and len(raw) >= 10 and raw[8:9] == b" " and re.fullmatch(rb"[0-9a-f]{8}", raw[:8]):
            body = raw[9:]
            if int(raw[:8], 16) == zlib.crc32(body):
                try:
                    doc = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    doc = None
        if doc is None:
            if last and header is not None:
                break
            raise Failure(f"read index {path!r} failed: line {i + 1} is damaged", "corrupt")
        if header is None:
            ok = (isinstance(doc, dict) and doc.get("log") == 1 and isinstance(doc.get("scope"), str)
                  and (scope is None or doc["scope"] == scope) and is_count(doc.get("generation"))
                  and doc["generation"] >= 1)
            if not ok:
                raise Failure(f"read index {path!r} failed: bad log header", "corrupt")
            header = doc
        else:
            ok = (isinstance(doc, list) and len(doc) >= 2 and isinstance(doc[1], str) and KEY_RE.match(doc[1])
                  and ((doc[0] == "put" and len(doc) == 5 and all(is_count(x) for x in doc[2:]))
                       or (doc[0] == "delete" and len(doc) == 2)))
            if not ok:
                raise Failure(f"read index {path!r} failed: record {len(records) + 1} is malformed", "corrupt")
            records.append(doc)
        consumed += len(raw) + 1
    if header is None:
        raise Failure(f"read index {path!r} failed: the log has no header", "corrupt")
    return header["scope"], header["generation"], records, len(data) - consumed


def read_scope_index(scope_dir: str, scope):
    """The index of one scope folder: {"scope", "version", "generation", "entries", "log"} or None.
    The log is read before the snapshot, so a compaction in between shows as a stale log (read again)."""
    snapshot_path = os.path.join(scope_dir, SNAPSHOT)
    log_path = os.path.join(scope_dir, LOG)
    for attempt in range(4):
        log_data = read_file(log_path)
        snap_data = read_file(snapshot_path)
        if log_data is None and snap_data is None:
            return None
        version, named, generation, entries = (0, scope, 0, {}) if snap_data is None else \
            parse_snapshot(snapshot_path, snap_data, scope)
        log = None if log_data is None else parse_log(log_path, log_data, named)
        if log is not None and log[1] > generation:
            raise Failure(f"read index {log_path!r} failed: it follows generation {log[1]}, "
                          f"metadata.json is generation {generation}", "corrupt")
        if log is not None and log[1] < generation and attempt < 3:
            continue
        current = log if log is not None and log[1] == generation else None
        for r in (current[2] if current else []):
            if r[0] == "put":
                entries[r[1]] = entry_of(*r[1:])
            else:
                entries.pop(r[1], None)
        return {"scope": named if named is not None else log[0], "version": version, "generation": generation,
                "entries": entries, "log": None if current is None else (len(current[2]), current[3])}
    raise AssertionError("unreachable")


def append_durably(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW)
    try:
        write_all_durably(fd, data)
    finally:
        os.close(fd)


def record_change(scope_dir: str, index: dict, key: str, entry) -> None:
    """Writes one change (entry None: a delete) the way FORMAT.md section 5.1 describes."""
    entries = index["entries"]
    if entry is None:
        entries.pop(key, None)
        record = ["delete", key]
    else:
        entries[key] = entry
        record = ["put", key, entry["created_at_unix_ms"], entry["updated_at_unix_ms"], entry["value_bytes"]]
    log = index["log"]
    log_path = os.path.join(scope_dir, LOG)
    if index["version"] != 2 or (log is not None and (log[1] > 0 or log[0] + 1 >= max(COMPACT_MIN_RECORDS,
                                                                                            len(entries) / 4))):
        rows = [[e["key"], e["created_at_unix_ms"], e["updated_at_unix_ms"], e["value_bytes"]]
                for e in sorted(entries.values(), key=lambda e: e["key"])]
        doc = {"version": 2, "scope": index["scope"], "generation": index["generation"] + 1, "entries": rows}
        write_file_atomic(os.path.join(scope_dir, SNAPSHOT),
                          json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        try:
            os.unlink(log_path)
        except FileNotFoundError:
            pass
    elif log is None:
        write_file_atomic(log_path, log_line({"log": 1, "scope": index["scope"], "generation": index["generation"]})
                          + log_line(record))
    else:
        append_durably(log_path, log_line(record))


# --- commands -------------------------------------------------------------------------------

def check_names(scope: str, key: str) -> None:
    if not scope or "\x00" in scope or "/" in scope or "\\" in scope:
        raise UsageError(f"invalid scope {scope!r}")
    if not KEY_RE.match(key):
        raise UsageError(f"invalid key {key!r}: expected 1-128 bytes of [a-z0-9._-]")


class UsageError(Exception):
    pass


def cmd_get(root: str, kek: bytes, scope: str, key: str) -> int:
    check_names(scope, key)
    check_backend(root, create=False)
    path = os.path.join(root, "objects", object_id(scope, key))
    data = read_file(path)
    if data is None:
        raise Failure(f"get secret failed: scope {scope!r} key {key!r} not found", "not_found")
    value = open_envelope(kek, scope, key, data)
    out = sys.stdout.buffer
    out.write(value)
    out.flush()
    return 0


def cmd_put(root: str, kek: bytes, scope: str, key: str, lock_timeout_ms: int) -> int:
    check_names(scope, key)
    value = sys.stdin.buffer.read()
    envelope = seal(kek, scope, key, value)
    ensure_dir(root)
    check_backend(root, create=True, kek=kek)
    objects = os.path.join(root, "objects")
    scope_dir = os.path.join(root, "scopes", scope_dir_name(scope))
    ensure_dir(objects)
    ensure_dir(scope_dir)
    obj_id = object_id(scope, key)
    obj_path = os.path.join(objects, obj_id)
    with ScopeLock(os.path.join(scope_dir, ".metadata.lock"), lock_timeout_ms):
        check_kek_record(root, kek, f"put {scope}/{key}")
        index = read_scope_index(scope_dir, scope) or \
            {"scope": scope, "version": 0, "generation": 0, "entries": {}, "log": None}
        now = int(time.time() * 1000)
        old = index["entries"].get(key)
        entry = entry_of(key, old["created_at_unix_ms"] if old is not None else now, now, len(value))
        previous_object = read_file(obj_path)
        write_file_atomic(obj_path, envelope)
        try:
            record_change(scope_dir, index, key, entry)
        except BaseException:
            # The index did not change: put back the object it refers to (or none).
            if previous_object is not None:
                write_file_atomic(obj_path, previous_object)
            else:
                remove_file(obj_path)
            raise
    return 0


def utf16_order(text: str) -> bytes:
    """Sort key matching JavaScript's `<` on strings (UTF-16 code units)."""
    return text.encode("utf-16-be", "surrogatepass")


def cmd_list(root: str) -> int:
    scopes_root = os.path.join(root, "scopes")
    try:
        names = sorted(os.listdir(scopes_root))
    except FileNotFoundError:
        names = []
    out = []
    for name in names:
        if not SCOPE_DIR_RE.match(name):
            continue
        index = read_scope_index(os.path.join(scopes_root, name), None)
        if index is None:
            continue
        scope = index["scope"]
        if not isinstance(scope, str) or scope_dir_name(scope) != name:
            raise Failure(f"read index in {name!r} failed: its scope does not match its folder", "corrupt")
        for e in index["entries"].values():
            out.append({"scope": scope, **e})
    out.sort(key=lambda e: (utf16_order(e["scope"]), utf16_order(e["key"])))
    sys.stdout.buffer.write((json.dumps(out, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="palyra_vault_ref.py",
        description="Reference implementation of the @palyra/vault folder format (interop tests).",
        epilog="Exit codes: 0 success, 1 operational error (not found, crypto, I/O, lock timeout), 2 usage.",
    )
    p.add_argument("--root", required=True, help="the vault folder")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--identity-dir", help="identity folder: state.v1.json, else ca/state.json")
    who.add_argument("--kek-hex", help="the 32-byte KEK as 64 hex characters")
    p.add_argument("--lock-timeout-ms", type=int, default=5000, help="how long put waits for the lock")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("get", help="write a secret's exact bytes to stdout")
    g.add_argument("scope")
    g.add_argument("key")
    s = sub.add_parser("put", help="store stdin's bytes as a secret")
    s.add_argument("scope")
    s.add_argument("key")
    sub.add_parser("list", help="print every secret's metadata as JSON")
    args = p.parse_args(argv)
    if args.command in ("get", "put") and args.identity_dir is None and args.kek_hex is None:
        p.error(f"{args.command} needs --identity-dir or --kek-hex")
    if args.kek_hex is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", args.kek_hex):
        p.error("--kek-hex must be 64 hex characters (32 bytes)")
    return p, args


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args.root)
        kek = bytes.fromhex(args.kek_hex) if args.kek_hex is not None else kek_from_identity(args.identity_dir)
        if args.command == "get":
            return cmd_get(args.root, kek, args.scope, args.key)
        return cmd_put(args.root, kek, args.scope, args.key, args.lock_timeout_ms)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"error: usage: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"error: {e.code}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: io: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
