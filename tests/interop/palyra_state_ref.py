#!/usr/bin/env python3
"""Independent reference implementation of Palyra's state folder: the identity store
(docs/FORMAT.md section 4), the device KEK (section 2) and Palyra's own vault layout
(section 6), for interoperability tests. Written from docs/FORMAT.md sections 1 (names,
object id), 2, 3, 4 and 6 only; it shares no code with the TypeScript. Python 3 standard
library plus the `cryptography` package (Debian's /usr/bin/python3 has it).

Usage (the global options may also follow the subcommand):
    palyra_state_ref.py --identity-dir DIR init-identity [--legacy-plaintext] [--embed-ca [--decoy-ca-state]]
    palyra_state_ref.py --identity-dir DIR kek-id
    palyra_state_ref.py --identity-dir DIR check-identity
    palyra_state_ref.py --identity-dir DIR --root VAULT put SCOPE KEY [--legacy-object]  < value
    palyra_state_ref.py --identity-dir DIR --root VAULT put-batch  < [{"scope","key","value_hex"[,"legacy_object"]}]
    palyra_state_ref.py --identity-dir DIR --root VAULT get SCOPE KEY
    palyra_state_ref.py --identity-dir DIR --root VAULT delete SCOPE KEY
    palyra_state_ref.py --root VAULT list
    palyra_state_ref.py --identity-dir DIR --root VAULT dump
    palyra_state_ref.py --root VAULT check-vault
    palyra_state_ref.py --root VAULT hold-lock MS

init-identity   creates an identity store: `.store-key.v1` (32 random bytes, created by a
                temporary file hard-linked into place), `identity/ca/state.json` (a fresh P-256
                PKCS#8 key and a self-signed CA certificate, CN "Palyra Gateway CA", sequence 0),
                then `identity/state.v1.json` (generation 1), every item as IDS1 ||
                nonce || ChaCha20-Poly1305 under the store key. Prints the kek_id.
  --legacy-plaintext  items are written as plaintext files (hex-named, no IDS1, no store key)
  --embed-ca          the older form: state.v1.json embeds "ca":{...}, no ca/state.json item
  --decoy-ca-state    with --embed-ca: also write ca/state.json with a *different* key, which
                      the seed rules must ignore (state.v1.json's ca.private_key_pem wins)
kek-id          prints the kek_id of the device KEK derived from the identity store.
check-identity  checks an identity store strictly against docs/FORMAT.md section 4 (names,
                modes, IDS1, item shapes, PEM form, the certificate is a self-signed CA for the
                key with CN "Palyra Gateway CA"); prints a JSON report with the kek_id.
put             stores all of stdin's bytes: a chacha20_poly1305 envelope without kek_id in
                objects/objects.store.json (or, with --legacy-object, in a legacy
                objects/obj_<hex> file), then metadata.json; under metadata.lock.
put-batch       the same as one put per item of the JSON array on stdin, in order, in one process.
get             writes the exact value bytes to stdout.
delete          removes the entry from metadata.json, then the object from the store.
list            prints [{"scope","key","object_id","created_at_unix_ms","updated_at_unix_ms",
                "value_bytes"}] in metadata.json's order (insertion order).
dump            opens every secret: [{"scope","key","value_hex"}] in metadata.json's order.
check-vault     checks a palyra-layout vault strictly against docs/FORMAT.md section 6
                (canonical metadata.json and objects.store.json text, envelope fields, object
                ids, no scopes/, no leftover lock or temporary file, modes); prints a JSON report.
hold-lock MS    takes metadata.lock, prints "held" and holds it MS milliseconds (a daemon stand-in).

Errors: exit 1 with `error: <code>: <message>` on stderr; 2 for usage. When a lock held by
someone else does not have the daemon's content format, a `warning: foreign-lock-format` line
goes to stderr (tests assert there is none).
"""

import argparse
import base64
import datetime
import errno
import hashlib
import json
import os
import random
import re
import secrets
import stat
import sys
import time
import unicodedata

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

DIR_MODE = 0o700
FILE_MODE = 0o600
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# docs/FORMAT.md section 4 (the identity store)
STORE_KEY_FILE = ".store-key.v1"
ITEM_MAGIC = b"IDS1"
ITEM_STATE = "identity/state.v1.json"
ITEM_CA = "identity/ca/state.json"
CA_COMMON_NAME = "Palyra Gateway CA"
MAX_ITEM_BYTES = 1 << 20

# docs/FORMAT.md section 6 (Palyra's layout)
METADATA = "metadata.json"
OBJECTS_DIR = "objects"
OBJECTS_STORE = "objects.store.json"
LOCK_FILE = "metadata.lock"
BACKEND_KIND = "backend.kind"
MAX_STORE_BYTES = 32 << 20
MAX_OBJECT_BYTES = 4 << 20
STALE_AFTER_MS = 30_000
LOCK_RE = re.compile(r"^pid=([0-9]+) ts_ms=([0-9]+)\n$")
KEY_RE = re.compile(r"^[a-z0-9._-]{1,128}$")
OBJECT_ID_RE = re.compile(r"^obj_[0-9a-f]{64}$")
TMP_RE = re.compile(r"\.tmp\.")

AEADS = {"aes_256_gcm": AESGCM, "chacha20_poly1305": ChaCha20Poly1305}
# What the daemon writes, in this order (docs/FORMAT.md section 3 without kek_id, section 6.3).
DAEMON_ENVELOPE_FIELDS = (
    "version",
    "algorithm",
    "aad_b64",
    "secret_nonce_b64",
    "secret_ciphertext_b64",
    "secret_mac_b64",
    "dek_nonce_b64",
    "dek_ciphertext_b64",
    "dek_mac_b64",
)
B64_FIELDS = DAEMON_ENVELOPE_FIELDS[2:]


class Failure(Exception):
    """An operational error: exit 1 with `error: <code>: <message>` on stderr."""

    def __init__(self, message: str, code: str = "io"):
        super().__init__(message)
        self.code = code


class UsageError(Exception):
    """Exit 2."""


# --- primitives (docs/FORMAT.md sections 1-3) --------------------------------------------------

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
        raise Failure(f"open envelope failed: field {field!r} is not base64", "crypto") from None
    if b64encode(data) != text:
        raise Failure(f"open envelope failed: field {field!r} is not canonical base64", "crypto")
    return data


def derive_kek(seed: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"palyra.vault.kek.v1",
                info=b"envelope:kek").derive(sha256(seed))


def kek_id(kek: bytes) -> str:
    return sha256(b"palyra.vault.kek-id.v1" + kek)[:8].hex()


def envelope_aad(scope: str, key: str) -> bytes:
    return f"palyra.vault.v1|{scope}|{key}".encode("utf-8")


def object_id(scope: str, key: str) -> str:
    """docs/FORMAT.md section 1: obj_ + hex SHA-256("palyra.vault.object.v1" || scope || 0x00 || key)."""
    return "obj_" + sha256(b"palyra.vault.object.v1" + scope.encode("utf-8") + b"\x00" + key.encode("utf-8")).hex()


def wipe(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


# --- files -------------------------------------------------------------------------------------

def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str) -> None:
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise Failure(f"{path!r} is not a folder", "io")
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def read_capped(path: str, cap: int, code: str = "io"):
    """The file's bytes, None when absent; never follows a symbolic link; refuses more than cap."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Failure(f"read {path!r} failed: {e.strerror}", code) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise Failure(f"read {path!r} failed: not a regular file", code)
        data = f.read(cap + 1)
    if len(data) > cap:
        raise Failure(f"read {path!r} failed: larger than {cap} bytes", code)
    return data


def unique() -> str:
    return f"{os.getpid()}.{secrets.token_hex(8)}"


def write_atomic(path: str, data: bytes) -> None:
    """<name>.tmp.<unique> (exclusive, 0600), fsync, rename over the target, fsync the folder."""
    tmp = f"{path}.tmp.{unique()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(path) or ".")


# --- identity store (docs/FORMAT.md section 4) -------------------------------------------------

def item_file_name(name: str) -> str:
    return name.encode("utf-8").hex()


def seal_item(store_key: bytes, plaintext: bytes, nonce: bytes = None) -> bytes:
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    assert len(nonce) == NONCE_BYTES and len(store_key) == KEY_BYTES
    return ITEM_MAGIC + nonce + ChaCha20Poly1305(store_key).encrypt(nonce, plaintext, b"")


def open_item(store_key, data: bytes, where: str) -> bytes:
    """IDS1 items are decrypted; anything else is a legacy plaintext item, read as it is."""
    if not data.startswith(ITEM_MAGIC):
        return data
    if len(data) < len(ITEM_MAGIC) + NONCE_BYTES + TAG_BYTES:
        raise Failure(f"identity item {where} is truncated ({len(data)} bytes)", "identity")
    if store_key is None:
        raise Failure(f"identity item {where} is encrypted but the store key {STORE_KEY_FILE} is missing", "identity")
    nonce = data[4:4 + NONCE_BYTES]
    try:
        return ChaCha20Poly1305(store_key).decrypt(nonce, data[4 + NONCE_BYTES:], b"")
    except InvalidTag:
        raise Failure(f"identity item {where} does not decrypt under the store key", "identity") from None


class IdentityStore:
    def __init__(self, folder: str):
        self.folder = folder

    def path(self, name: str) -> str:
        return os.path.join(self.folder, item_file_name(name))

    def store_key(self):
        raw = read_capped(os.path.join(self.folder, STORE_KEY_FILE), 4096, "identity")
        if raw is None:
            return None
        if len(raw) != KEY_BYTES:
            raise Failure(f"store key {STORE_KEY_FILE} has {len(raw)} bytes, not {KEY_BYTES}", "identity")
        return raw

    def read_raw(self, name: str):
        return read_capped(self.path(name), MAX_ITEM_BYTES, "identity")

    def read_json(self, name: str):
        raw = self.read_raw(name)
        if raw is None:
            return None
        plain = open_item(self.store_key(), raw, repr(name))
        try:
            doc = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Failure(f"identity item {name!r} is not UTF-8 JSON", "identity") from None
        if not isinstance(doc, dict):
            raise Failure(f"identity item {name!r} is not a JSON object", "identity")
        return doc

    def create_store_key(self) -> bytes:
        """Temporary file hard-linked into place: the first creator wins, everyone uses its key."""
        final = os.path.join(self.folder, STORE_KEY_FILE)
        tmp = f"{final}.tmp.{unique()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, final)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        fsync_dir(self.folder)
        key = self.store_key()
        assert key is not None
        return key

    def write_item(self, name: str, plaintext: bytes, store_key) -> None:
        data = plaintext if store_key is None else seal_item(store_key, plaintext)
        write_atomic(self.path(name), data)

    def seed(self) -> bytes:
        """docs/FORMAT.md section 4.3: state.v1.json's ca.private_key_pem, else ca/state.json's private_key_pem."""
        pem, where = None, None
        state = self.read_json(ITEM_STATE)
        if state is not None:
            ca = state.get("ca")
            if isinstance(ca, dict) and "private_key_pem" in ca:
                pem, where = ca["private_key_pem"], f"{ITEM_STATE} ca.private_key_pem"
        if pem is None:
            ca_state = self.read_json(ITEM_CA)
            if ca_state is None:
                raise Failure(f"no identity in {self.folder!r}: neither {ITEM_STATE!r} with a CA nor {ITEM_CA!r}",
                              "identity")
            pem, where = ca_state.get("private_key_pem"), f"{ITEM_CA} private_key_pem"
        if not isinstance(pem, str):
            raise Failure(f"identity seed {where} is missing or not a string", "identity")
        if not pem.strip():
            raise Failure(f"identity seed {where} is empty", "identity")
        return pem.encode("utf-8")

    def kek(self) -> bytes:
        return derive_kek(self.seed())


def compact(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return {"certificate_pem": cert_pem, "private_key_pem": pem, "sequence": 0}


def cmd_init_identity(folder: str, legacy_plaintext: bool, embed_ca: bool, decoy: bool) -> int:
    if decoy and not embed_ca:
        raise UsageError("--decoy-ca-state needs --embed-ca")
    os.makedirs(folder, DIR_MODE, exist_ok=True)
    ensure_dir(folder)
    store = IdentityStore(folder)
    for name in (ITEM_STATE, ITEM_CA):
        if os.path.lexists(store.path(name)):
            raise Failure(f"an identity already exists in {folder!r} (item {name!r})", "identity")
    store_key = None if legacy_plaintext else store.create_store_key()
    ca = new_ca()
    state = {"generation": 1, "paired_devices": {}, "revoked_devices": {}, "revoked_certificate_fingerprints": []}
    if embed_ca:
        state = {"generation": 1, "ca": ca, "paired_devices": {}, "revoked_devices": {},
                 "revoked_certificate_fingerprints": []}
        if decoy:
            store.write_item(ITEM_CA, compact(new_ca()), store_key)
    else:
        store.write_item(ITEM_CA, compact(ca), store_key)
    store.write_item(ITEM_STATE, compact(state), store_key)
    kek = store.kek()
    assert kek == derive_kek(ca["private_key_pem"].encode("utf-8"))
    print(kek_id(kek))
    return 0


def check_mode(path: str, want: int, problems: list) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        problems.append(f"{path}: a symbolic link")
    elif stat.S_IMODE(st.st_mode) != want:
        problems.append(f"{path}: mode {stat.S_IMODE(st.st_mode):o}, not {want:o}")


def check_pem_key(pem, what: str, problems: list):
    if not isinstance(pem, str):
        problems.append(f"{what}: not a string")
        return None
    if not pem.startswith("-----BEGIN PRIVATE KEY-----\n") or not pem.endswith("-----END PRIVATE KEY-----\n"):
        problems.append(f"{what}: not a PKCS#8 PEM with LF line ends and a trailing newline: {pem[:40]!r}…{pem[-30:]!r}")
    if "\r" in pem:
        problems.append(f"{what}: has CR characters")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        problems.append(f"{what}: does not load as a private key: {e}")
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        problems.append(f"{what}: not a P-256 key")
        return None
    return key


def check_certificate(cert_pem, key, what: str, problems: list) -> None:
    if not isinstance(cert_pem, str) or not cert_pem.startswith("-----BEGIN CERTIFICATE-----"):
        problems.append(f"{what}: not a PEM certificate")
        return
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except ValueError as e:
        problems.append(f"{what}: does not parse: {e}")
        return
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if cns != [CA_COMMON_NAME]:
        problems.append(f"{what}: subject CN is {cns!r}, not {CA_COMMON_NAME!r}")
    if cert.issuer != cert.subject:
        problems.append(f"{what}: not self-signed (issuer {cert.issuer.rfc4514_string()})")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not bc.ca:
            problems.append(f"{what}: basicConstraints cA is false")
    except x509.ExtensionNotFound:
        problems.append(f"{what}: no basicConstraints extension")
    if key is not None:
        pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) != pub:
            problems.append(f"{what}: the certificate's public key is not the CA key's")
        try:
            key.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        except InvalidSignature:
            problems.append(f"{what}: the signature does not verify under the CA key")
    now = datetime.datetime.utcnow()
    if not (cert.not_valid_before <= now <= cert.not_valid_after):
        problems.append(f"{what}: not valid now ({cert.not_valid_before} .. {cert.not_valid_after})")


def cmd_check_identity(folder: str) -> int:
    store = IdentityStore(folder)
    problems = []
    if not os.path.isdir(folder):
        raise Failure(f"no identity folder {folder!r}", "identity")
    check_mode(folder, DIR_MODE, problems)
    store_key = store.store_key()
    if store_key is None:
        problems.append(f"no {STORE_KEY_FILE}")
    expected = {STORE_KEY_FILE, item_file_name(ITEM_STATE), item_file_name(ITEM_CA)}
    for name in sorted(os.listdir(folder)):
        check_mode(os.path.join(folder, name), FILE_MODE, problems)
        if name not in expected:
            problems.append(f"unexpected file {name!r} in the identity store")
    docs, encrypted = {}, {}
    for item in (ITEM_CA, ITEM_STATE):
        raw = store.read_raw(item)
        if raw is None:
            problems.append(f"item {item!r} (file {item_file_name(item)}) is missing")
            continue
        encrypted[item] = raw.startswith(ITEM_MAGIC)
        if not encrypted[item]:
            problems.append(f"item {item!r} is not IDS1-encrypted")
        plain = open_item(store_key, raw, repr(item))
        if plain != compact(json.loads(plain.decode("utf-8"))):
            problems.append(f"item {item!r} is not compact JSON: {plain[:80]!r}")
        docs[item] = json.loads(plain.decode("utf-8"))
    ca = docs.get(ITEM_CA)
    if ca is not None:
        if list(ca.keys()) != ["certificate_pem", "private_key_pem", "sequence"]:
            problems.append(f"{ITEM_CA} has the fields {list(ca.keys())!r}")
        if ca.get("sequence") != 0:
            problems.append(f"{ITEM_CA} sequence is {ca.get('sequence')!r}, not 0")
        key = check_pem_key(ca.get("private_key_pem"), f"{ITEM_CA} private_key_pem", problems)
        check_certificate(ca.get("certificate_pem"), key, f"{ITEM_CA} certificate_pem", problems)
    state = docs.get(ITEM_STATE)
    if state is not None:
        want = {"generation": 1, "paired_devices": {}, "revoked_devices": {}, "revoked_certificate_fingerprints": []}
        if state != want:
            problems.append(f"{ITEM_STATE} is {state!r}, not {want!r}")
    if problems:
        raise Failure("identity store does not follow docs/FORMAT.md section 4: " + "; ".join(problems), "identity")
    print(json.dumps({"kek_id": kek_id(store.kek()), "encrypted": encrypted}))
    return 0


# --- scopes (docs/FORMAT.md sections 1, 6.2) ---------------------------------------------------

def check_component(text: str, what: str) -> str:
    text = text.strip()
    raw = text.encode("utf-8")
    if not 1 <= len(raw) <= 256:
        raise Failure(f"{what} must be 1-256 bytes of UTF-8, got {len(raw)}", "invalid_scope")
    if not unicodedata.is_normalized("NFC", text):
        raise Failure(f"{what} is not in Unicode NFC", "invalid_scope")
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf") or ch in "/\\":
            raise Failure(f"{what} contains the character U+{ord(ch):04X}", "invalid_scope")
    return text


def parse_scope(text: str) -> dict:
    """A palyra-layout scope string to its tagged JSON form."""
    if text.strip().lower() == "global":
        return {"kind": "global"}
    head, sep, rest = text.partition(":")
    if not sep:
        raise Failure(f"scope {text!r}: expected global, principal:<id>, channel:<name>:<account> or skill:<id>",
                      "invalid_scope")
    if head in ("ws", "pr"):
        raise Failure(f"scope {text!r}: {head}: scopes cannot be kept in a palyra-layout vault (migrate)",
                      "invalid_scope")
    if head == "principal":
        return {"kind": "principal", "principal_id": check_component(rest, "principal id")}
    if head == "skill":
        return {"kind": "skill", "skill_id": check_component(rest, "skill id")}
    if head == "channel":
        name, sep2, account = rest.partition(":")
        if not sep2:
            raise Failure(f"scope {text!r}: expected channel:<name>:<account>", "invalid_scope")
        return {"kind": "channel", "channel_name": check_component(name, "channel name"),
                "account_id": check_component(account, "account id")}
    raise Failure(f"scope {text!r}: unknown scope kind {head!r}", "invalid_scope")


def scope_string(tagged) -> str:
    """The tagged JSON form of metadata.json to the scope string; strict about its fields."""
    shapes = {
        "global": ["kind"],
        "principal": ["kind", "principal_id"],
        "channel": ["kind", "channel_name", "account_id"],
        "skill": ["kind", "skill_id"],
    }
    if not isinstance(tagged, dict) or tagged.get("kind") not in shapes:
        raise Failure(f"metadata.json: unknown scope {tagged!r}", "corrupt")
    kind = tagged["kind"]
    if sorted(tagged.keys()) != sorted(shapes[kind]) or not all(isinstance(v, str) for v in tagged.values()):
        raise Failure(f"metadata.json: scope {tagged!r} does not have exactly the fields {shapes[kind]}", "corrupt")
    if kind == "global":
        return "global"
    if kind == "channel":
        if ":" in tagged["channel_name"]:
            raise Failure(f"metadata.json: channel name {tagged['channel_name']!r} contains ':'", "corrupt")
        return f"channel:{tagged['channel_name']}:{tagged['account_id']}"
    return f"{kind}:{tagged[shapes[kind][1]]}"


def canonical_scope(text: str) -> str:
    return scope_string(parse_scope(text))


def check_key(key: str) -> None:
    if not KEY_RE.match(key):
        raise Failure(f"key {key!r} must be 1-128 characters of [a-z0-9._-]", "invalid_key")


# --- envelope (docs/FORMAT.md sections 3, 6.3) -------------------------------------------------

def seal(kek: bytes, scope: str, key: str, value: bytes) -> bytes:
    aad = envelope_aad(scope, key)
    dek = bytearray(os.urandom(KEY_BYTES))
    secret_nonce, dek_nonce = os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
    try:
        sealed = ChaCha20Poly1305(bytes(dek)).encrypt(secret_nonce, value, aad)
        wrapped = ChaCha20Poly1305(kek).encrypt(dek_nonce, bytes(dek), aad)
    finally:
        wipe(dek)
    env = {
        "version": 1,
        "algorithm": "chacha20_poly1305",
        "aad_b64": b64encode(aad),
        "secret_nonce_b64": b64encode(secret_nonce),
        "secret_ciphertext_b64": b64encode(sealed[:-TAG_BYTES]),
        "secret_mac_b64": b64encode(sealed[-TAG_BYTES:]),
        "dek_nonce_b64": b64encode(dek_nonce),
        "dek_ciphertext_b64": b64encode(wrapped[:-TAG_BYTES]),
        "dek_mac_b64": b64encode(wrapped[-TAG_BYTES:]),
    }
    return compact(env)


def parse_envelope(data: bytes, where: str) -> dict:
    try:
        env = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"open {where} failed: the object is not UTF-8 JSON", "crypto") from None
    if not isinstance(env, dict):
        raise Failure(f"open {where} failed: the object is not an envelope", "crypto")
    return env


def open_envelope(kek: bytes, scope: str, key: str, data: bytes) -> bytes:
    where = f"scope {scope!r} key {key!r}"
    env = parse_envelope(data, where)
    if env.get("version") != 1 or isinstance(env.get("version"), bool):
        raise Failure(f"open {where} failed: unsupported version {env.get('version')!r}", "crypto")
    aead = AEADS.get(env.get("algorithm"))
    if aead is None:
        raise Failure(f"open {where} failed: unsupported algorithm {env.get('algorithm')!r}", "crypto")
    f = {name: b64decode(env.get(name), name) for name in B64_FIELDS}
    aad = envelope_aad(scope, key)
    if f["aad_b64"] != aad:
        raise Failure(f"open {where} failed: the envelope belongs to another scope or key", "crypto")
    if (len(f["secret_nonce_b64"]) != NONCE_BYTES or len(f["dek_nonce_b64"]) != NONCE_BYTES
            or len(f["secret_mac_b64"]) != TAG_BYTES or len(f["dek_mac_b64"]) != TAG_BYTES
            or len(f["dek_ciphertext_b64"]) != KEY_BYTES):
        raise Failure(f"open {where} failed: a nonce, tag or wrapped key has the wrong length", "crypto")
    try:
        dek = bytearray(aead(kek).decrypt(f["dek_nonce_b64"], f["dek_ciphertext_b64"] + f["dek_mac_b64"], aad))
    except InvalidTag:
        raise Failure(f"open {where} failed: the data key does not unwrap under this device's KEK", "crypto") from None
    try:
        return aead(bytes(dek)).decrypt(f["secret_nonce_b64"], f["secret_ciphertext_b64"] + f["secret_mac_b64"], aad)
    except InvalidTag:
        raise Failure(f"open {where} failed: the secret's tag does not verify", "crypto") from None
    finally:
        wipe(dek)


# --- the lock (docs/FORMAT.md section 6.4) -----------------------------------------------------

def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


class MetadataLock:
    """metadata.lock in the vault root: exclusive create, `pid=<pid> ts_ms=<ms>\\n`, 0600, removed
    on release. Stale when its file time is at least 30 s old and its pid is dead or its content
    does not parse. (A test tool: the stale removal checks the inode but is not race-free.)"""

    def __init__(self, root: str, timeout_ms: int, stale_after_ms: int = STALE_AFTER_MS):
        self.path = os.path.join(root, LOCK_FILE)
        self.timeout_ms = timeout_ms
        self.stale_after_ms = stale_after_ms
        self.content = None
        self.warned = set()

    def _stale(self):
        """(inode, holder text) of the present lock, and whether it is stale."""
        try:
            fd = os.open(self.path, os.O_RDONLY | NOFOLLOW)
        except FileNotFoundError:
            return None, "", False
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read(4096).decode("utf-8", "replace")
        m = LOCK_RE.match(text)
        if text and not m and text not in self.warned:
            self.warned.add(text)
            print(f"warning: foreign-lock-format: {text!r}", file=sys.stderr)
        age_ms = time.time() * 1000 - st.st_mtime * 1000
        stale = age_ms >= self.stale_after_ms and (m is None or not pid_alive(int(m.group(1))))
        return st.st_ino, text, stale

    def __enter__(self):
        deadline = time.monotonic() + self.timeout_ms / 1000
        delay = 0.002
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
            except FileExistsError:
                ino, holder, stale = self._stale()
                if stale:
                    try:
                        if os.lstat(self.path).st_ino == ino:
                            os.unlink(self.path)
                    except FileNotFoundError:
                        pass
                    continue
                if time.monotonic() >= deadline:
                    raise Failure(f"take lock {self.path!r} failed: held by {holder.strip()!r} for more than "
                                  f"{self.timeout_ms} ms", "lock_timeout") from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.05)
                continue
            try:
                os.fchmod(fd, FILE_MODE)
                self.content = f"pid={os.getpid()} ts_ms={int(time.time() * 1000)}\n".encode("ascii")
                os.write(fd, self.content)
            finally:
                os.close(fd)
            return self

    def __exit__(self, *exc):
        try:
            with open(self.path, "rb") as f:
                mine = f.read() == self.content
            if mine:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        return False


# --- the palyra layout (docs/FORMAT.md section 6) ----------------------------------------------

def now_ms() -> int:
    return int(time.time() * 1000)


def check_not_scoped(root: str) -> None:
    if os.path.lexists(os.path.join(root, "scopes")):
        raise Failure(f"{root!r} has scopes/: a scoped-layout vault, not palyra layout", "corrupt")


def read_metadata(root: str) -> list:
    path = os.path.join(root, METADATA)
    raw = read_capped(path, MAX_STORE_BYTES, "corrupt")
    if raw is None:
        return []
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"{path!r} is not UTF-8 JSON", "corrupt") from None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("entries"), list):
        raise Failure(f"{path!r} is not a version 1 index", "corrupt")
    entries, seen = [], set()
    fields = ["scope", "key", "object_id", "created_at_unix_ms", "updated_at_unix_ms", "value_bytes"]
    for e in doc["entries"]:
        if not isinstance(e, dict) or sorted(e.keys()) != sorted(fields):
            raise Failure(f"{path!r}: entry {e!r} does not have exactly the fields {fields}", "corrupt")
        scope = scope_string(e["scope"])
        key = e["key"]
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise Failure(f"{path!r}: bad key {key!r}", "corrupt")
        for n in fields[3:]:
            if not isinstance(e[n], int) or isinstance(e[n], bool) or e[n] < 0:
                raise Failure(f"{path!r}: {n} of {scope}/{key} is {e[n]!r}", "corrupt")
        if e["object_id"] != object_id(scope, key):
            raise Failure(f"{path!r}: object_id of {scope}/{key} is {e['object_id']!r}, expected "
                          f"{object_id(scope, key)!r}", "corrupt")
        if (scope, key) in seen:
            raise Failure(f"{path!r}: {scope}/{key} is listed twice", "corrupt")
        seen.add((scope, key))
        entries.append(e)
    return entries


def encode_metadata(entries: list) -> bytes:
    """Pretty-printed, 2-space indent, no trailing newline (serde_json's to_vec_pretty form)."""
    return json.dumps({"version": 1, "entries": entries}, indent=2, ensure_ascii=False).encode("utf-8")


def read_store(root: str) -> dict:
    path = os.path.join(root, OBJECTS_DIR, OBJECTS_STORE)
    raw = read_capped(path, MAX_STORE_BYTES, "corrupt")
    if raw is None:
        return {}
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Failure(f"{path!r} is not UTF-8 JSON", "corrupt") from None
    if not isinstance(doc, dict):
        raise Failure(f"{path!r} is not a JSON object", "corrupt")
    out = {}
    for oid, arr in doc.items():
        if not OBJECT_ID_RE.match(oid) or not isinstance(arr, list) or not all(
                isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in arr):
            raise Failure(f"{path!r}: entry {oid!r} is not an object id mapped to byte values", "corrupt")
        out[oid] = bytes(arr)
    return out


def encode_store(store: dict) -> bytes:
    data = json.dumps({k: list(v) for k, v in store.items()}, sort_keys=True, separators=(",", ":")).encode("ascii")
    if len(data) > MAX_STORE_BYTES:
        raise Failure(f"the objects store would exceed {MAX_STORE_BYTES} bytes", "value_too_large")
    return data


def legacy_object_path(root: str, oid: str) -> str:
    return os.path.join(root, OBJECTS_DIR, oid)


def read_object(root: str, store: dict, oid: str):
    """The store wins; a legacy objects/obj_<hex> file is merged in on read."""
    if oid in store:
        return store[oid]
    return read_capped(legacy_object_path(root, oid), MAX_OBJECT_BYTES, "corrupt")


def write_store(root: str, store: dict) -> None:
    write_atomic(os.path.join(root, OBJECTS_DIR, OBJECTS_STORE), encode_store(store))


def write_metadata(root: str, entries: list) -> None:
    write_atomic(os.path.join(root, METADATA), encode_metadata(entries))


def require_vault(root: str) -> None:
    if not os.path.isdir(root):
        raise Failure(f"no vault at {root!r}", "not_found")
    check_not_scoped(root)


def cmd_put(root: str, store_id: IdentityStore, scope_text: str, key: str, value: bytes, legacy: bool,
            lock_timeout_ms: int) -> int:
    print(json.dumps(put_one(root, store_id.kek(), scope_text, key, value, legacy, lock_timeout_ms)))
    return 0


def cmd_put_batch(root: str, store_id: IdentityStore, batch: bytes, lock_timeout_ms: int) -> int:
    """Several puts in one process, in order, each a complete put of its own (lock, store, index)."""
    try:
        items = json.loads(batch.decode("utf-8"))
        assert isinstance(items, list)
        todo = [(i["scope"], i["key"], bytes.fromhex(i["value_hex"]), bool(i.get("legacy_object", False)))
                for i in items]
    except (UnicodeDecodeError, ValueError, AssertionError, KeyError, TypeError):
        raise UsageError('put-batch reads [{"scope","key","value_hex"[,"legacy_object"]}] from stdin') from None
    kek = store_id.kek()
    for scope, key, value, legacy in todo:
        print(json.dumps(put_one(root, kek, scope, key, value, legacy, lock_timeout_ms)))
    return 0


def put_one(root: str, kek: bytes, scope_text: str, key: str, value: bytes, legacy: bool, lock_timeout_ms: int):
    scope = canonical_scope(scope_text)
    tagged = parse_scope(scope)
    check_key(key)
    os.makedirs(os.path.dirname(os.path.abspath(root)), exist_ok=True)
    ensure_dir(root)
    check_not_scoped(root)
    oid = object_id(scope, key)
    envelope = seal(kek, scope, key, value)
    assert open_envelope(kek, scope, key, envelope) == value
    with MetadataLock(root, lock_timeout_ms):
        ensure_dir(os.path.join(root, OBJECTS_DIR))
        if not os.path.lexists(os.path.join(root, BACKEND_KIND)):
            write_atomic(os.path.join(root, BACKEND_KIND), b"encrypted_file")
        entries = read_metadata(root)
        store = read_store(root)
        old_object = store.get(oid)
        if legacy:
            if oid in store:
                raise UsageError("--legacy-object: the store already holds this object, and the store wins")
            write_atomic(legacy_object_path(root, oid), envelope)
        else:
            store[oid] = envelope
            write_store(root, store)
        t = now_ms()
        for e in entries:
            if scope_string(e["scope"]) == scope and e["key"] == key:
                e.update(object_id=oid, updated_at_unix_ms=t, value_bytes=len(value))
                break
        else:
            entries.append({"scope": tagged, "key": key, "object_id": oid, "created_at_unix_ms": t,
                            "updated_at_unix_ms": t, "value_bytes": len(value)})
        try:
            write_metadata(root, entries)
        except BaseException:
            if not legacy:
                if old_object is None:
                    store.pop(oid, None)
                else:
                    store[oid] = old_object
                write_store(root, store)
            raise
    return {"scope": scope, "key": key, "object_id": oid, "updated_at_unix_ms": t}


def find_entry(entries: list, scope: str, key: str):
    for e in entries:
        if scope_string(e["scope"]) == scope and e["key"] == key:
            return e
    return None


def cmd_get(root: str, store_id: IdentityStore, scope_text: str, key: str, lock_timeout_ms: int) -> int:
    scope = canonical_scope(scope_text)
    check_key(key)
    require_vault(root)
    kek = store_id.kek()
    with MetadataLock(root, lock_timeout_ms):
        entry = find_entry(read_metadata(root), scope, key)
        if entry is None:
            raise Failure(f"no secret {scope}/{key}", "not_found")
        data = read_object(root, read_store(root), entry["object_id"])
    if data is None:
        raise Failure(f"the object of {scope}/{key} is missing", "corrupt")
    value = open_envelope(kek, scope, key, data)
    if len(value) != entry["value_bytes"]:
        raise Failure(f"{scope}/{key} has {len(value)} bytes, metadata says {entry['value_bytes']}", "corrupt")
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()
    return 0


def cmd_dump(root: str, store_id: IdentityStore, lock_timeout_ms: int) -> int:
    """Every secret, opened, in metadata.json's order: [{"scope","key","value_hex"}]."""
    require_vault(root)
    kek = store_id.kek()
    with MetadataLock(root, lock_timeout_ms):
        entries = read_metadata(root)
        store = read_store(root)
        objects = [read_object(root, store, e["object_id"]) for e in entries]
    out = []
    for e, data in zip(entries, objects):
        scope = scope_string(e["scope"])
        if data is None:
            raise Failure(f"the object of {scope}/{e['key']} is missing", "corrupt")
        value = open_envelope(kek, scope, e["key"], data)
        if len(value) != e["value_bytes"]:
            raise Failure(f"{scope}/{e['key']} has {len(value)} bytes, metadata says {e['value_bytes']}", "corrupt")
        out.append({"scope": scope, "key": e["key"], "value_hex": value.hex()})
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_delete(root: str, scope_text: str, key: str, lock_timeout_ms: int) -> int:
    scope = canonical_scope(scope_text)
    check_key(key)
    require_vault(root)
    with MetadataLock(root, lock_timeout_ms):
        entries = read_metadata(root)
        entry = find_entry(entries, scope, key)
        if entry is None:
            raise Failure(f"no secret {scope}/{key}", "not_found")
        store = read_store(root)
        remaining = [e for e in entries if e is not entry]
        write_metadata(root, remaining)
        if entry["object_id"] in store:
            del store[entry["object_id"]]
            try:
                write_store(root, store)
            except BaseException:
                write_metadata(root, entries)
                raise
    print(json.dumps({"scope": scope, "key": key, "deleted": True}))
    return 0


def cmd_list(root: str, lock_timeout_ms: int) -> int:
    require_vault(root)
    with MetadataLock(root, lock_timeout_ms):
        entries = read_metadata(root)
    out = [{"scope": scope_string(e["scope"]), "key": e["key"], "object_id": e["object_id"],
            "created_at_unix_ms": e["created_at_unix_ms"], "updated_at_unix_ms": e["updated_at_unix_ms"],
            "value_bytes": e["value_bytes"]} for e in entries]
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_check_vault(root: str, lock_timeout_ms: int) -> int:
    """Strict, byte-level checks of what docs/FORMAT.md section 6 fixes; every problem is reported."""
    require_vault(root)
    problems = []
    with MetadataLock(root, lock_timeout_ms):
        entries = read_metadata(root)
        meta_raw = read_capped(os.path.join(root, METADATA), MAX_STORE_BYTES)
        store_raw = read_capped(os.path.join(root, OBJECTS_DIR, OBJECTS_STORE), MAX_STORE_BYTES)
        store = read_store(root)
        names = sorted(n for n in os.listdir(root) if n != LOCK_FILE)  # ours, held right now
        object_names = sorted(os.listdir(os.path.join(root, OBJECTS_DIR))) \
            if os.path.isdir(os.path.join(root, OBJECTS_DIR)) else []
    if meta_raw is None:
        problems.append("no metadata.json")
    elif meta_raw != encode_metadata(entries):
        problems.append("metadata.json is not pretty-printed with a 2-space indent and no trailing newline "
                        f"(first bytes {meta_raw[:60]!r}, last {meta_raw[-10:]!r})")
    if meta_raw is not None:
        # Field order of each entry and of each tagged scope, as docs/FORMAT.md section 6.2 shows them.
        order = ["scope", "key", "object_id", "created_at_unix_ms", "updated_at_unix_ms", "value_bytes"]
        for e in entries:
            if list(e.keys()) != order:
                problems.append(f"entry fields in the order {list(e.keys())}, not {order}")
            if list(e["scope"].keys())[0] != "kind":
                problems.append(f"tagged scope {e['scope']!r} does not start with kind")
    if store_raw is not None and store_raw != encode_store(store):
        problems.append(f"objects.store.json is not compact JSON with sorted keys (first bytes {store_raw[:60]!r})")
    for n in names:
        if n not in (METADATA, OBJECTS_DIR, BACKEND_KIND):
            problems.append(f"unexpected name {n!r} in the vault root")
    kind = read_capped(os.path.join(root, BACKEND_KIND), 256)
    if kind is not None and (kind != kind.strip() or kind.strip().lower() != b"encrypted_file"):
        problems.append(f"backend.kind is {kind!r}, not the bare kind without a newline")
    for n in object_names:
        if n != OBJECTS_STORE and not OBJECT_ID_RE.match(n):
            problems.append(f"unexpected name {n!r} in objects/")
        if TMP_RE.search(n):
            problems.append(f"leftover temporary {n!r}")
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            check_mode(os.path.join(dirpath, d), DIR_MODE, problems)
        for f in filenames:
            check_mode(os.path.join(dirpath, f), FILE_MODE, problems)
    check_mode(root, DIR_MODE, problems)
    referenced = set()
    for e in entries:
        scope = scope_string(e["scope"])
        referenced.add(e["object_id"])
        data = read_object(root, store, e["object_id"])
        if data is None:
            problems.append(f"{scope}/{e['key']}: no object")
            continue
        env = parse_envelope(data, f"{scope}/{e['key']}")
        if e["object_id"] in store:
            if list(env.keys()) != list(DAEMON_ENVELOPE_FIELDS):
                problems.append(f"{scope}/{e['key']}: envelope fields {list(env.keys())}, not the daemon's "
                                f"{list(DAEMON_ENVELOPE_FIELDS)}")
            if env.get("algorithm") != "chacha20_poly1305":
                problems.append(f"{scope}/{e['key']}: algorithm {env.get('algorithm')!r}")
            if data != compact(env):
                problems.append(f"{scope}/{e['key']}: envelope is not compact JSON")
        if b64decode(env.get("aad_b64"), "aad_b64") != envelope_aad(scope, e["key"]):
            problems.append(f"{scope}/{e['key']}: AAD is not palyra.vault.v1|scope|key")
        if e["created_at_unix_ms"] > e["updated_at_unix_ms"]:
            problems.append(f"{scope}/{e['key']}: created after updated")
    for oid in store:
        if oid not in referenced:
            problems.append(f"orphan object {oid} in the store")
    if problems:
        raise Failure("vault does not follow docs/FORMAT.md section 6: " + "; ".join(problems), "corrupt")
    print(json.dumps({"entries": len(entries), "store_objects": len(store),
                      "legacy_objects": [n for n in object_names if OBJECT_ID_RE.match(n)]}))
    return 0


def cmd_hold_lock(root: str, ms: int, lock_timeout_ms: int) -> int:
    require_vault(root)
    with MetadataLock(root, lock_timeout_ms):
        print("held", flush=True)
        time.sleep(ms / 1000)
    return 0


# --- command line ------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv):
    common = Parser(add_help=False)
    common.add_argument("--identity-dir", help="the identity store folder (docs/FORMAT.md section 4)")
    common.add_argument("--root", help="the palyra-layout vault folder (docs/FORMAT.md section 6)")
    common.add_argument("--lock-timeout-ms", type=int, help="how long to wait for metadata.lock (default 5000)")
    # In the subcommands the same options must not overwrite what was given before them.
    sub_common = Parser(add_help=False)
    for a in ("--identity-dir", "--root"):
        sub_common.add_argument(a, default=argparse.SUPPRESS)
    sub_common.add_argument("--lock-timeout-ms", type=int, default=argparse.SUPPRESS)

    p = Parser(prog="palyra_state_ref.py", parents=[common],
               description="Independent reference of Palyra's identity store and vault layout "
                           "(docs/FORMAT.md sections 2-4, 6).",
               epilog="Exit codes: 0 success, 1 operational error (error: <code>: <message>), 2 usage.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    s = sub.add_parser("init-identity", parents=[sub_common])
    s.add_argument("--legacy-plaintext", action="store_true")
    s.add_argument("--embed-ca", action="store_true")
    s.add_argument("--decoy-ca-state", action="store_true")
    sub.add_parser("kek-id", parents=[sub_common])
    sub.add_parser("check-identity", parents=[sub_common])
    s = sub.add_parser("put", parents=[sub_common])
    s.add_argument("scope")
    s.add_argument("key")
    s.add_argument("--legacy-object", action="store_true")
    sub.add_parser("put-batch", parents=[sub_common])
    for name in ("get", "delete"):
        s = sub.add_parser(name, parents=[sub_common])
        s.add_argument("scope")
        s.add_argument("key")
    sub.add_parser("list", parents=[sub_common])
    sub.add_parser("dump", parents=[sub_common])
    sub.add_parser("check-vault", parents=[sub_common])
    s = sub.add_parser("hold-lock", parents=[sub_common])
    s.add_argument("ms", type=int)
    return p.parse_args(argv)


def need(args, *names):
    for n in names:
        if not getattr(args, n.replace("-", "_"), None):
            raise UsageError(f"{args.command} needs --{n}")


def main(argv=None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        timeout = args.lock_timeout_ms if args.lock_timeout_ms is not None else 5000
        cmd = args.command
        if cmd == "init-identity":
            need(args, "identity-dir")
            return cmd_init_identity(args.identity_dir, args.legacy_plaintext, args.embed_ca, args.decoy_ca_state)
        if cmd == "kek-id":
            need(args, "identity-dir")
            print(kek_id(IdentityStore(args.identity_dir).kek()))
            return 0
        if cmd == "check-identity":
            need(args, "identity-dir")
            return cmd_check_identity(args.identity_dir)
        if cmd == "put":
            need(args, "identity-dir", "root")
            value = sys.stdin.buffer.read()
            return cmd_put(args.root, IdentityStore(args.identity_dir), args.scope, args.key, value,
                           args.legacy_object, timeout)
        if cmd == "put-batch":
            need(args, "identity-dir", "root")
            return cmd_put_batch(args.root, IdentityStore(args.identity_dir), sys.stdin.buffer.read(), timeout)
        if cmd == "get":
            need(args, "identity-dir", "root")
            return cmd_get(args.root, IdentityStore(args.identity_dir), args.scope, args.key, timeout)
        if cmd == "delete":
            need(args, "root")
            return cmd_delete(args.root, args.scope, args.key, timeout)
        if cmd == "list":
            need(args, "root")
            return cmd_list(args.root, timeout)
        if cmd == "dump":
            need(args, "identity-dir", "root")
            return cmd_dump(args.root, IdentityStore(args.identity_dir), timeout)
        if cmd == "check-vault":
            need(args, "root")
            return cmd_check_vault(args.root, timeout)
        if cmd == "hold-lock":
            need(args, "root")
            return cmd_hold_lock(args.root, args.ms, timeout)
        raise UsageError(f"unknown command {cmd!r}")
    except UsageError as e:
        print(f"error: usage: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"error: {e.code}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        code = "permission" if e.errno in (errno.EACCES, errno.EPERM) else "io"
        print(f"error: {code}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
