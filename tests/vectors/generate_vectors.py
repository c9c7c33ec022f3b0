#!/usr/bin/env python3
"""Known-answer vectors for @palyra/vault (docs/FORMAT.md sections 1-3), computed
independently of the TypeScript code with Python's `cryptography` package.

Deterministic: every key, nonce and DEK is derived from SHA-256 of a fixed
label, so running the script twice prints the same bytes.

    python3 tests/vectors/generate_vectors.py > tests/vectors/palyra_vectors.json

Only the standard library and `cryptography` are used.
"""

import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEK_SALT = b"palyra.vault.kek.v1"
KEK_INFO = b"envelope:kek"
KEK_ID_DOMAIN = b"palyra.vault.kek-id.v1"
OBJECT_DOMAIN = b"palyra.vault.object.v1"
SCOPE_DOMAIN = b"palyra.vault.scope.v1"
TAG_BYTES = 16


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def fixed(label: str, n: int) -> bytes:
    """n deterministic bytes derived from a label (n <= 32)."""
    assert 0 < n <= 32
    return sha256(b"palyra.vault.test-vectors|" + label.encode("utf-8"))[:n]


def b64(data: bytes) -> str:
    """Standard base64 alphabet without '=' padding."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    okm = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
    # Cross-check against a textbook RFC 5869 HKDF built from the stdlib's HMAC.
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    t, stream, i = b"", b"", 1
    while len(stream) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        stream += t
        i += 1
    assert stream[:length] == okm, "cryptography's HKDF disagrees with the stdlib HMAC construction"
    return okm


# --- docs/FORMAT.md section 2: KEK and kek_id ---------------------------------------------

def derive_kek(seed: bytes) -> bytes:
    return hkdf_sha256(sha256(seed), KEK_SALT, KEK_INFO, 32)


def kek_id(kek: bytes) -> str:
    return sha256(KEK_ID_DOMAIN + kek)[:8].hex()


# --- docs/FORMAT.md section 1: names --------------------------------------------------------

def envelope_aad(scope: str, key: str) -> bytes:
    return ("palyra.vault.v1|" + scope + "|" + key).encode("utf-8")


def object_id(scope: str, key: str) -> str:
    return "obj_" + sha256(OBJECT_DOMAIN + scope.encode("utf-8") + b"\x00" + key.encode("utf-8")).hex()


def scope_dir(scope: str) -> str:
    return "s_" + sha256(SCOPE_DOMAIN + scope.encode("utf-8")).hex()[:32]


# --- docs/FORMAT.md section 3: envelope -----------------------------------------------------

AEADS = {"aes_256_gcm": AESGCM, "chacha20_poly1305": ChaCha20Poly1305}


def seal(kek: bytes, scope: str, key: str, value: bytes, algorithm: str,
         dek: bytes, secret_nonce: bytes, dek_nonce: bytes) -> str:
    assert len(kek) == 32 and len(dek) == 32 and len(secret_nonce) == 12 and len(dek_nonce) == 12
    aead = AEADS[algorithm]
    aad = envelope_aad(scope, key)
    secret = aead(dek).encrypt(secret_nonce, value, aad)
    wrapped = aead(kek).encrypt(dek_nonce, dek, aad)
    assert len(secret) == len(value) + TAG_BYTES and len(wrapped) == 32 + TAG_BYTES
    # Key order is the one of docs/FORMAT.md section 3; dicts keep insertion order.
    envelope = {
        "version": 1,
        "algorithm": algorithm,
        "kek_id": kek_id(kek),
        "aad_b64": b64(aad),
        "secret_nonce_b64": b64(secret_nonce),
        "secret_ciphertext_b64": b64(secret[:-TAG_BYTES]),
        "secret_mac_b64": b64(secret[-TAG_BYTES:]),
        "dek_nonce_b64": b64(dek_nonce),
        "dek_ciphertext_b64": b64(wrapped[:-TAG_BYTES]),
        "dek_mac_b64": b64(wrapped[-TAG_BYTES:]),
    }
    text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=True)
    # Self-check: the envelope opens again with the same primitives.
    parsed = json.loads(text)
    unb64 = lambda s: base64.b64decode(s + "=" * (-len(s) % 4), validate=True)  # noqa: E731
    assert unb64(parsed["aad_b64"]) == aad
    dek2 = aead(kek).decrypt(unb64(parsed["dek_nonce_b64"]),
                             unb64(parsed["dek_ciphertext_b64"]) + unb64(parsed["dek_mac_b64"]), aad)
    assert dek2 == dek
    value2 = aead(dek2).decrypt(unb64(parsed["secret_nonce_b64"]),
                                unb64(parsed["secret_ciphertext_b64"]) + unb64(parsed["secret_mac_b64"]), aad)
    assert value2 == value
    return text


# --- sections of the output -----------------------------------------------------------------

def hkdf_rfc5869_a1() -> dict:
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    length = 42
    okm = hkdf_sha256(ikm, salt, info, length)
    published = bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    assert okm == published, "cryptography's HKDF disagrees with RFC 5869 A.1"
    return {
        "ikm_hex": ikm.hex(),
        "salt_hex": salt.hex(),
        "info_hex": info.hex(),
        "length": length,
        "okm_hex": okm.hex(),
    }


def fixed_pem(label: str, crlf: bool = False) -> str:
    """A PKCS#8 PEM of a P-256 key whose scalar is derived from a fixed label."""
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    scalar = int.from_bytes(fixed("p256-scalar|" + label, 32), "big") % (order - 1) + 1
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n") and pem.endswith("-----END PRIVATE KEY-----\n")
    if crlf:
        pem = pem.replace("\n", "\r\n")
    return pem


def kek_entries() -> list:
    pems = [
        fixed_pem("device-1"),
        fixed_pem("device-2"),
        # The same key as the first entry with CRLF line endings: a different
        # seed, hence a different KEK. The PEM bytes are used exactly as stored.
        fixed_pem("device-1", crlf=True),
    ]
    out = []
    for pem in pems:
        kek = derive_kek(pem.encode("utf-8"))
        out.append({"pem": pem, "kek_hex": kek.hex(), "kek_id": kek_id(kek)})
    assert len({e["kek_hex"] for e in out}) == len(out)
    return out


SCOPES = ["global", "ws:acme", "pr:alice", "ws:日本語-プロジェクト", "pr:émile", "ws:a b"]
KEYS = ["openai_api_key", "github_token", "a", "x.y-z_9"]


def name_entries() -> list:
    out = []
    for i, scope in enumerate(SCOPES):
        # Every key for the first scopes; two keys each for the others, so the
        # list stays readable while every scope and every key appears.
        keys = KEYS if i < 2 else [KEYS[i % len(KEYS)], KEYS[(i + 1) % len(KEYS)]]
        for key in keys:
            out.append({
                "scope": scope,
                "key": key,
                "aad_hex": envelope_aad(scope, key).hex(),
                "object_id": object_id(scope, key),
                "scope_dir": scope_dir(scope),
            })
    return out


def envelope_entries(keks: list) -> list:
    kek1 = bytes.fromhex(keks[0]["kek_hex"])
    kek2 = bytes.fromhex(keks[1]["kek_hex"])
    cases = [
        # (label, kek, scope, key, algorithm, value)
        ("gcm-empty", kek1, "global", "openai_api_key", "aes_256_gcm", b""),
        ("gcm-1-byte", kek1, "global", "a", "aes_256_gcm", b"x"),
        ("gcm-100-bytes", kek1, "ws:acme", "github_token", "aes_256_gcm",
         bytes(range(100))),
        ("gcm-invalid-utf8", kek1, "pr:alice", "x.y-z_9", "aes_256_gcm",
         b"\xff\xfe\x00bad\xc3\x28utf8\xed\xa0\x80\x80"),
        ("gcm-text", kek1, "ws:acme", "openai_api_key", "aes_256_gcm",
         b"sk-test-0123456789abcdefghijklmnopqrstuvwxyz"),
        ("chacha-33-bytes", kek1, "global", "github_token", "chacha20_poly1305",
         fixed("value|chacha-33", 32) + b"\x00"),
        ("chacha-empty", kek1, "ws:acme", "a", "chacha20_poly1305", b""),
        ("gcm-unicode-scope", kek1, "ws:日本語-プロジェクト", "openai_api_key", "aes_256_gcm",
         "clé secrète 🔑".encode("utf-8")),
        ("chacha-unicode-scope", kek1, "pr:émile", "x.y-z_9", "chacha20_poly1305",
         "mot de passe".encode("utf-8")),
        ("gcm-space-scope", kek1, "ws:a b", "github_token", "aes_256_gcm", b"ghp_value with spaces"),
        ("gcm-second-kek", kek2, "ws:acme", "x.y-z_9", "aes_256_gcm", b"another device"),
    ]
    out = []
    for label, kek, scope, key, algorithm, value in cases:
        envelope = seal(kek, scope, key, value, algorithm,
                        dek=fixed("dek|" + label, 32),
                        secret_nonce=fixed("secret-nonce|" + label, 12),
                        dek_nonce=fixed("dek-nonce|" + label, 12))
        out.append({
            "kek_hex": kek.hex(),
            "scope": scope,
            "key": key,
            "algorithm": algorithm,
            "value_hex": value.hex(),
            "envelope": envelope,
        })
    return out


def main() -> None:
    import cryptography

    # The version goes to stderr (and into README.md), not into the JSON: the vectors
    # do not depend on it, and regenerating with another version must not change the file.
    sys.stderr.write(f"generate_vectors.py: cryptography {cryptography.__version__}\n")
    keks = kek_entries()
    doc = {
        "comment": "Generated by tests/vectors/generate_vectors.py with Python cryptography; do not edit by hand.",
        "hkdf_rfc5869_a1": hkdf_rfc5869_a1(),
        "kek": keks,
        "names": name_entries(),
        "envelopes": envelope_entries(keks),
    }
    # UTF-8 whatever the locale, and "\n" line endings on every platform.
    sys.stdout.buffer.write((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
