"""vault.age against the CCTV vectors, the real `age` binary, and its own round trips."""

from __future__ import annotations

import hashlib
import itertools
import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import agevectors
from tests.helpers import Cli, require_tool
from vault import age
from vault.age.bech32 import bech32_encode
from vault.errors import (
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    InvalidValue,
    KeyvaultError,
    NoMatchingIdentity,
    WorkFactorTooHigh,
)

CHEAP_LOG_N = 10  # ~3 ms: for tests where the KDF is not the point
PASSPHRASE = "correct horse battery staple"
VECTOR_NAMES = agevectors.vector_names()
VECTORS = {name: agevectors.load(agevectors.VECTOR_DIR / name) for name in VECTOR_NAMES}

# CCTV `expect` → what we must raise. A work factor above our cap (scrypt_work_factor_23) is a
# header failure to CCTV; we raise the more precise WorkFactorTooHigh for it.
EXPECTED_ERRORS: dict[str, tuple[type[KeyvaultError], ...]] = {
    "no match": (NoMatchingIdentity,),
    "HMAC failure": (AgeHeaderMacError,),
    "header failure": (AgeHeaderError, WorkFactorTooHigh),
    "payload failure": (AgePayloadError,),
}
PQ_IDENTITY_PREFIX = "AGE-SECRET-KEY-PQ-"
# CCTV's 143 vectors = 92 we must pass + 33 armored + 18 post-quantum we must refuse.
SUPPORTED_VECTORS = 92
# Post-quantum vectors whose header is malformed in a part we do parse (generic stanza
# syntax, or our own x25519 stanza): AgeHeaderError. Every other one is NoMatchingIdentity,
# since the age spec has a reader skip the stanza types it does not know.
PQ_HEADER_ERRORS = {
    "hybrid_not_canonical_body": "non-canonical base64",
    "hybrid_x25519_arg": "invalid x25519 stanza",
}


def seeded_rand(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic stand-in for os.urandom."""
    counter = itertools.count()
    return lambda n: hashlib.shake_256(seed + next(counter).to_bytes(8, "big")).digest(n)


# --- CCTV vectors -------------------------------------------------------------------------


def vector_identities(vector: agevectors.Vector) -> list[age.Identity]:
    identities: list[age.Identity] = [age.X25519Identity.parse(i) for i in vector.identities]
    return identities + [age.ScryptIdentity(p) for p in vector.passphrases]


def names_of(kind: str | None) -> list[str]:
    return [name for name, v in VECTORS.items() if agevectors.unsupported(v) == kind]


@pytest.mark.parametrize("name", names_of(None))
def test_cctv_vector(name: str) -> None:
    vector = VECTORS[name]
    identities = vector_identities(vector)
    if vector.expect == "success":
        plaintext = age.decrypt(vector.data, identities)
        assert hashlib.sha256(plaintext).hexdigest() == vector.payload_sha256
        assert age.unwrap_file_key(vector.data, identities) == vector.file_key
        return
    expected = EXPECTED_ERRORS[vector.expect]
    with pytest.raises(KeyvaultError) as raised:
        age.decrypt(vector.data, identities)
    assert isinstance(raised.value, expected), f"{vector.expect}: got {raised.value!r}"
    assert str(raised.value) == str(raised.value).lower()


def classic_identities(vector: agevectors.Vector) -> list[age.Identity]:
    """The vector's X25519 and scrypt identities, leaving out the post-quantum ones we cannot
    parse, plus a fresh X25519 identity so that the list is never empty."""
    x25519 = [i for i in vector.identities if not i.startswith(PQ_IDENTITY_PREFIX)]
    identities: list[age.Identity] = [age.X25519Identity.parse(i) for i in x25519]
    passphrases = [age.ScryptIdentity(p) for p in vector.passphrases]
    return [*identities, *passphrases, age.X25519Identity.generate()]


@pytest.mark.parametrize("name", names_of("armor"))
def test_cctv_armored_vector_is_refused(name: str) -> None:
    """Binary age files only: an armored file is not an age file to us, whatever it holds."""
    vector = VECTORS[name]
    for read in (age.decrypt, age.unwrap_file_key):
        with pytest.raises(AgeHeaderError) as refused:
            read(vector.data, classic_identities(vector))
        assert str(refused.value) == "header: not an age file"


@pytest.mark.parametrize("name", names_of("post-quantum"))
def test_cctv_post_quantum_vector_is_refused(name: str) -> None:
    """No ML-KEM: a PQ identity is an invalid value, a hybrid stanza matches nothing."""
    vector = VECTORS[name]
    for identity in vector.identities:
        if identity.startswith(PQ_IDENTITY_PREFIX):
            with pytest.raises(InvalidValue) as refused:
                age.X25519Identity.parse(identity)
            assert identity not in str(refused.value)
    expected = PQ_HEADER_ERRORS.get(name)
    with pytest.raises(AgeHeaderError if expected else NoMatchingIdentity) as refused:
        age.decrypt(vector.data, classic_identities(vector))
    assert expected is None or expected in str(refused.value)


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("armor_x25519", 4, "vault.age: header: not an age file"),
        ("hybrid", 3, "this identity cannot open vault.age"),
    ],
)
def test_cli_refuses_an_unsupported_vault_file_in_one_line(
    vault_cli: Cli, name: str, code: int, message: str
) -> None:
    """What a user sees when vault.age is an armored or post-quantum file: one error line."""
    (vault_cli.home / "vault.age").write_bytes(VECTORS[name].data)
    result = vault_cli("list")
    assert (result.code, result.out) == (code, "")
    assert result.err.splitlines()[0] == f"keyvault: error: {message}"
    assert "Traceback" not in result.err


def test_cctv_vectors_are_all_accounted_for() -> None:
    assert len(VECTORS) == 143
    assert len(names_of(None)) == SUPPORTED_VECTORS
    assert len(names_of("armor")) == 33
    assert len(names_of("post-quantum")) == 18
    supported = [VECTORS[name] for name in names_of(None)]
    assert {v.expect for v in supported} == {"success", *EXPECTED_ERRORS}


@pytest.mark.parametrize("expect", ["success", "payload failure", "HMAC failure"])
def test_cctv_vectors_with_their_file_key(expect: str) -> None:
    """decrypt_with_file_key agrees with the vectors whose outcome does not need a stanza."""
    chosen = [VECTORS[name] for name in names_of(None) if VECTORS[name].expect == expect]
    assert chosen
    for vector in chosen:
        assert vector.file_key is not None
        if expect == "success":
            plaintext = age.decrypt_with_file_key(vector.data, vector.file_key)
            assert hashlib.sha256(plaintext).hexdigest() == vector.payload_sha256
        else:
            with pytest.raises(EXPECTED_ERRORS[expect]):
                age.decrypt_with_file_key(vector.data, vector.file_key)


# --- the real age binary ------------------------------------------------------------------


def need_age() -> None:
    require_tool("age")
    require_tool("age-keygen")


def run(argv: Sequence[str], stdin: bytes = b"") -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def write_secret(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


def run_in_pty(argv: Sequence[str], passphrase: str, timeout: float = 30) -> tuple[int, bytes]:
    """Run age on a pseudo-terminal, answering each passphrase prompt: age reads /dev/tty."""
    pid, fd = pty.fork()
    if pid == 0:  # child: become age at once
        try:
            os.execvp(argv[0], list(argv))  # noqa: S606 - age must own the pty
        finally:
            os._exit(127)
    output, answered, deadline = b"", 0, time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, 9)
                pytest.fail(f"age did not finish within {timeout} s: {output!r}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            for _ in range(len(re.findall(rb"passphrase[^\r\n]*: ", output)) - answered):
                os.write(fd, passphrase.encode() + b"\n")
                answered += 1
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.parametrize("size", [0, 5, age.CHUNK_SIZE, age.CHUNK_SIZE + 1, 200_000])
def test_age_decrypts_our_x25519_files(tmp_path: Path, size: int) -> None:
    need_age()
    identity = age.X25519Identity.generate()
    key_file = write_secret(tmp_path / "key.txt", identity.to_string().encode() + b"\n")
    plaintext = os.urandom(size)
    (tmp_path / "file.age").write_bytes(age.encrypt(plaintext, [identity.recipient()]))
    decrypted = run(["age", "-d", "-i", str(key_file), str(tmp_path / "file.age")])
    assert decrypted == plaintext


def test_we_read_age_keygen_identities_and_age_files(tmp_path: Path) -> None:
    need_age()
    recipients, identities = [], []
    for name in ("one.txt", "two.txt"):
        run(["age-keygen", "-o", str(tmp_path / name)])
        text = (tmp_path / name).read_text()
        [identity] = age.parse_identities(text)
        identities.append(identity)
        recipients.append(run(["age-keygen", "-y", str(tmp_path / name)]).decode().strip())
        assert identity.recipient().to_string() == recipients[-1]
        assert identity.to_string() in text.splitlines()
    plaintext = os.urandom(150_000)
    sealed = run(["age", *itertools.chain(*(("-r", r) for r in recipients))], stdin=plaintext)
    for identity in identities:
        assert age.decrypt(sealed, [identity]) == plaintext
    assert [s.type for s in age.parse_header(sealed).stanzas] == ["X25519", "X25519"]


def test_age_encrypts_to_our_recipient(tmp_path: Path) -> None:
    need_age()
    identity = age.X25519Identity.generate()
    sealed = run(["age", "-r", identity.recipient().to_string()], stdin=b"to us")
    assert age.decrypt(sealed, [identity]) == b"to us"


@pytest.mark.slow
def test_we_decrypt_age_passphrase_files(tmp_path: Path) -> None:
    """age -p uses its default work factor (18), so this test pays one real scrypt."""
    need_age()
    (tmp_path / "plain.txt").write_bytes(b"from age -p")
    argv = ["age", "-p", "-o", str(tmp_path / "file.age"), str(tmp_path / "plain.txt")]
    code, output = run_in_pty(argv, PASSPHRASE)
    assert code == 0, output
    sealed = (tmp_path / "file.age").read_bytes()
    [stanza] = age.parse_header(sealed).stanzas
    assert stanza.type == "scrypt"
    assert age.decrypt(sealed, [age.ScryptIdentity(PASSPHRASE)]) == b"from age -p"


def test_age_decrypts_our_passphrase_files(tmp_path: Path) -> None:
    need_age()
    recipient = age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)
    (tmp_path / "file.age").write_bytes(age.encrypt(b"from keyvault", [recipient]))
    argv = ["age", "-d", "-o", str(tmp_path / "out.txt"), str(tmp_path / "file.age")]
    code, output = run_in_pty(argv, PASSPHRASE)
    assert code == 0, output
    assert (tmp_path / "out.txt").read_bytes() == b"from keyvault"
    code, output = run_in_pty([*argv[:3], str(tmp_path / "wrong.txt"), argv[4]], "wrong")
    assert code != 0
    assert not (tmp_path / "wrong.txt").exists()


# --- round trips --------------------------------------------------------------------------

IDENTITY = age.X25519Identity.generate(seeded_rand(b"identity"))


@pytest.mark.parametrize(
    ("size", "payload_size"),
    [
        (0, 16 + 16),  # one empty final chunk, allowed only because it is the only one
        (1, 16 + 17),
        (age.CHUNK_SIZE, 16 + age.CHUNK_SIZE + 16),  # a full final chunk, no empty one after
        (age.CHUNK_SIZE + 1, 16 + age.CHUNK_SIZE + 16 + 17),
        (3 * age.CHUNK_SIZE + 7, 16 + 3 * (age.CHUNK_SIZE + 16) + 23),
    ],
)
def test_round_trip_and_chunk_layout(size: int, payload_size: int) -> None:
    plaintext = os.urandom(size)
    sealed = age.encrypt(plaintext, [IDENTITY.recipient()])
    assert len(sealed) - age.parse_header(sealed).payload_offset == payload_size
    assert age.decrypt(sealed, [IDENTITY]) == plaintext


def test_passphrase_round_trip_and_wrong_passphrase() -> None:
    sealed = age.encrypt(b"secret", [age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)])
    [stanza] = age.parse_header(sealed).stanzas
    assert (stanza.type, stanza.args[1]) == ("scrypt", str(CHEAP_LOG_N))
    assert age.decrypt(sealed, [age.ScryptIdentity(PASSPHRASE.encode())]) == b"secret"
    with pytest.raises(NoMatchingIdentity):
        age.decrypt(sealed, [age.ScryptIdentity("wrong")])
    with pytest.raises(NoMatchingIdentity):
        age.decrypt(sealed, [IDENTITY])


def test_multiple_recipients_each_decrypt() -> None:
    identities = [age.X25519Identity.generate() for _ in range(3)]
    sealed = age.encrypt(b"shared", [i.recipient() for i in identities])
    assert len(age.parse_header(sealed).stanzas) == 3
    for identity in identities:
        assert age.decrypt(sealed, [IDENTITY, identity]) == b"shared"
    with pytest.raises(NoMatchingIdentity):
        age.decrypt(sealed, [IDENTITY, age.ScryptIdentity(PASSPHRASE)])


def test_a_passphrase_must_be_the_only_recipient() -> None:
    scrypt = age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)
    with pytest.raises(InvalidValue):
        age.encrypt(b"x", [scrypt, IDENTITY.recipient()])
    with pytest.raises(InvalidValue):
        age.encrypt(b"x", [])


class OddStanzas:
    """A foreign recipient whose bodies hit the 64-column edge cases (48 bytes = 64 chars)."""

    def wrap(self, file_key: bytes, rand: Callable[[int], bytes]) -> list[age.Stanza]:
        return [age.Stanza("example.com/odd", ("a", "b"), rand(n)) for n in (0, 47, 48, 96)]


def test_unknown_stanzas_are_written_and_ignored(tmp_path: Path) -> None:
    sealed = age.encrypt(b"odd", [OddStanzas(), IDENTITY.recipient()])
    assert b"\n\n-> example.com/odd a b\n" in sealed  # empty final line after a full one
    header = age.parse_header(sealed)
    assert [len(s.body) for s in header.stanzas] == [0, 47, 48, 96, 32]
    assert age.decrypt(sealed, [IDENTITY]) == b"odd"
    if shutil.which("age"):
        key_file = write_secret(tmp_path / "key.txt", IDENTITY.to_string().encode())
        (tmp_path / "odd.age").write_bytes(sealed)
        assert run(["age", "-d", "-i", str(key_file), str(tmp_path / "odd.age")]) == b"odd"


def test_injected_rand_makes_output_deterministic() -> None:
    recipients = [IDENTITY.recipient()]
    first = age.encrypt(b"same", recipients, rand=seeded_rand(b"a"))
    assert first == age.encrypt(b"same", recipients, rand=seeded_rand(b"a"))
    assert first != age.encrypt(b"same", recipients, rand=seeded_rand(b"b"))
    assert age.decrypt(first, [IDENTITY]) == b"same"
    again = age.X25519Identity.generate(seeded_rand(b"identity"))
    assert again.to_string() == IDENTITY.to_string()


def test_file_key_api() -> None:
    sealed = age.encrypt(b"by file key", [IDENTITY.recipient()])
    file_key = age.unwrap_file_key(sealed, [IDENTITY])
    assert len(file_key) == age.FILE_KEY_SIZE
    assert age.decrypt_with_file_key(sealed, file_key) == b"by file key"
    with pytest.raises(AgeHeaderMacError, match="header mac mismatch"):
        age.decrypt_with_file_key(sealed, bytes(16))
    with pytest.raises(InvalidValue):
        age.decrypt_with_file_key(sealed, bytes(15))


def test_precise_error_messages() -> None:
    sealed = age.encrypt(os.urandom(3 * age.CHUNK_SIZE), [IDENTITY.recipient()])
    offset = age.parse_header(sealed).payload_offset
    second_chunk = offset + 16 + age.CHUNK_SIZE + 16 + 5
    tampered = bytearray(sealed)
    tampered[second_chunk] ^= 1
    with pytest.raises(AgePayloadError, match=r"^payload: chunk 2 failed authentication$"):
        age.decrypt(bytes(tampered), [IDENTITY])
    with pytest.raises(AgePayloadError, match=r"^payload: data after final chunk$"):
        age.decrypt(sealed + b"x", [IDENTITY])
    scrypt = age.encrypt(b"", [age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)])
    mixed = scrypt.replace(b"\n-> scrypt ", b"\n-> grease\n\n-> scrypt ", 1)
    with pytest.raises(AgeHeaderError, match=r"^header: scrypt stanza must be the only stanza$"):
        age.decrypt(mixed, [age.ScryptIdentity(PASSPHRASE), IDENTITY])


# --- work factor cap ----------------------------------------------------------------------


@pytest.mark.parametrize("work_factor", [b"23", b"40", b"9" * 5000])
def test_work_factor_above_the_cap_fails_before_any_scrypt(work_factor: bytes) -> None:
    sealed = age.encrypt(b"x", [age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)])
    crafted = sealed.replace(b" 10\n", b" " + work_factor + b"\n", 1)
    started = time.perf_counter()
    with pytest.raises(WorkFactorTooHigh, match="above the limit of 22"):
        age.decrypt(crafted, [age.ScryptIdentity(PASSPHRASE)])
    assert time.perf_counter() - started < 1.0  # scrypt at log2 N = 23 alone takes seconds


def test_identity_cap_is_configurable() -> None:
    sealed = age.encrypt(b"x", [age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)])
    with pytest.raises(WorkFactorTooHigh, match="scrypt work factor 10 is above the limit of 9"):
        age.decrypt(sealed, [age.ScryptIdentity(PASSPHRASE, max_log_n=9)])


# --- keys ---------------------------------------------------------------------------------

# From the age spec (c2sp.org/age): the identity is 32 bytes of 0x42.
SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"


def test_spec_keys() -> None:
    identity = age.X25519Identity.parse(SPEC_IDENTITY)
    assert identity.to_string() == SPEC_IDENTITY
    assert identity.recipient().to_string() == SPEC_RECIPIENT
    assert age.X25519Recipient.parse(SPEC_RECIPIENT) == identity.recipient()
    assert age.X25519Identity.generate(lambda n: b"\x42" * n).to_string() == SPEC_IDENTITY


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (age.X25519Identity.parse, SPEC_IDENTITY[:-1] + "Q", "bad checksum"),
        (age.X25519Identity.parse, SPEC_IDENTITY[:20] + "Q" + SPEC_IDENTITY[21:], "bad checksum"),
        (age.X25519Recipient.parse, SPEC_RECIPIENT[:-1] + "q", "bad checksum"),
        (age.X25519Identity.parse, SPEC_IDENTITY.lower(), "wrong prefix or mixed case"),
        (age.X25519Identity.parse, SPEC_IDENTITY[:-1] + "x", "wrong prefix or mixed case"),
        (age.X25519Recipient.parse, SPEC_RECIPIENT.upper(), "wrong prefix or mixed case"),
        (age.X25519Identity.parse, SPEC_RECIPIENT, "wrong prefix or mixed case"),
        (age.X25519Identity.parse, " " + SPEC_IDENTITY, "wrong prefix or mixed case"),
        (age.X25519Identity.parse, SPEC_IDENTITY + "B", "bad character or length"),
        (age.X25519Recipient.parse, "age1" + "b" * 40 + "é", "bad character or length"),
    ],
)
def test_bad_keys_are_rejected(parse: Callable[[str], object], text: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message) as raised:
        parse(text)
    assert text not in str(raised.value)


def test_short_key_is_rejected() -> None:
    short = bech32_encode("age", bytes(31))  # valid bech32, but not an X25519 key
    with pytest.raises(InvalidValue, match="wrong key length"):
        age.X25519Recipient.parse(short)


def test_secrets_stay_out_of_repr_and_str() -> None:
    secret = IDENTITY.to_string()
    body = secret.removeprefix("AGE-SECRET-KEY-1")
    for shown in (repr(IDENTITY), str(IDENTITY), f"{IDENTITY}", repr([IDENTITY])):
        assert body not in shown.upper()
        assert IDENTITY.recipient().to_string() in shown
    for shown in (repr(age.ScryptIdentity(PASSPHRASE)), repr(age.ScryptRecipient(PASSPHRASE))):
        assert PASSPHRASE not in shown


def test_parse_identities_skips_comments() -> None:
    text = f"# created: today\n# public key: {SPEC_RECIPIENT}\n\n{SPEC_IDENTITY}\n"
    [identity] = age.parse_identities(text)
    assert identity.recipient().to_string() == SPEC_RECIPIENT
    with pytest.raises(InvalidValue):
        age.parse_identities("# nothing here\n")


# --- fuzz: any bytes give a KeyvaultError, never another exception -------------------------

FUZZ_IDENTITIES: list[age.Identity] = [IDENTITY, age.ScryptIdentity(PASSPHRASE, max_log_n=12)]
VALID_FILES = [
    age.encrypt(b"fuzz me" * 20, [IDENTITY.recipient()], rand=seeded_rand(b"x")),
    age.encrypt(b"fuzz me", [age.ScryptRecipient(PASSPHRASE, log_n=CHEAP_LOG_N)]),
    age.encrypt(b"", [OddStanzas(), IDENTITY.recipient()], rand=seeded_rand(b"y")),
]
HEADERISH = st.text(alphabet="-> X25519scrypt\n\r=+/AQgw019", max_size=300).map(
    lambda text: b"age-encryption.org/v1\n" + text.encode()
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decrypt_or_keyvault_error(data: bytes) -> bytes | None:
    try:
        return age.decrypt(data, FUZZ_IDENTITIES)
    except KeyvaultError:
        return None


@FUZZ
@given(st.one_of(st.binary(max_size=3000), HEADERISH))
def test_fuzz_random_bytes(data: bytes) -> None:
    assert decrypt_or_keyvault_error(data) is None


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[bytes, bytes]:
    original = draw(st.sampled_from(VALID_FILES))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return original, bytes(data)


@FUZZ
@given(mutated_files())
def test_fuzz_mutations_never_decrypt(pair: tuple[bytes, bytes]) -> None:
    original, mutated = pair
    if mutated != original:  # age files are not malleable: every change must be caught
        assert decrypt_or_keyvault_error(mutated) is None
