"""A tampered or truncated vault file is always refused, with the right exit code, fast.

- every single-byte flip (XOR 0x01 and XOR 0x80) and every truncation of a small vault.age
  and identity.age is rejected by the library with an exact error class, never a result;
- a sample of the same damage through the CLI exits 3 or 4 with nothing on stdout;
- an identity.age header asking for a scrypt work factor above the cap fails in < 0.1 s.

The figures (bytes flipped, truncations tried) are recorded in docs/security.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, PASSPHRASE, Cli, make_key
from vault import age
from vault.errors import (
    EXIT_AUTH,
    EXIT_DAMAGED,
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    DamagedIdentity,
    KeyvaultError,
    WorkFactorTooHigh,
    WrongPassphrase,
)
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings, open_identity
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.inventory import add_key
from vault.store.keyvault import Keyvault

FLIP_MASKS = (0x01, 0x80)  # lowest and highest bit of every byte
PER_CASE_BOUND = 2.0  # seconds; a case that took longer would mean scrypt ran at a raised cost


@dataclass(frozen=True)
class Sample:
    home: Path
    vault: bytes
    identity: bytes
    identity_text: str


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """A one-key vault (~950 bytes) and its identity.age at a cheap work factor."""
    home = tmp_path_factory.mktemp("tamper") / "kv"
    unlocker = Unlocker(settings=UnlockSettings(passphrase=Secret(PASSPHRASE)))
    kv = Keyvault(Paths(home), unlocker)
    identity = kv.init(Secret(PASSPHRASE), log_n=CHEAP_LOG_N)
    add_key(kv, "canary", Secret(make_key()), {"project": "p"})
    paths = Paths(home)
    return Sample(home, paths.vault.read_bytes(), paths.identity.read_bytes(), identity.to_string())


def stanza_span(data: bytes) -> range:
    """Byte offsets of the recipient stanzas: damage there can only look like a wrong key."""
    start = data.index(b"\n-> ") + 1
    return range(start, data.index(b"\n---") + 1)


def flips(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    for mask in FLIP_MASKS:
        for i in range(len(data)):
            bad = bytearray(data)
            bad[i] ^= mask
            out.append((i, mask, bytes(bad)))
    return out


def vault_reader(sample: Sample, tmp_path: Path) -> Callable[[bytes], object]:
    """Keyvault.read() on a copy of the home whose vault.age holds the given bytes."""
    home = tmp_path / "kv"
    home.mkdir(mode=0o700, parents=True)
    (home / "identity.age").write_bytes(sample.identity)
    settings = UnlockSettings(identity=Secret(sample.identity_text))  # no scrypt per case
    kv = Keyvault(Paths(home), Unlocker(settings=settings))

    def read(data: bytes) -> object:
        (home / "vault.age").write_bytes(data)
        return kv.read()

    return read


def expect_refused(
    action: Callable[[], object], allowed: tuple[type[KeyvaultError], ...]
) -> KeyvaultError:
    started = time.monotonic()
    with pytest.raises(KeyvaultError) as caught:
        action()
    assert time.monotonic() - started < PER_CASE_BOUND
    # identity.age's damage names identity.age; its cause is the age error underneath
    found = caught.value
    if isinstance(found, DamagedIdentity) and isinstance(found.__cause__, KeyvaultError):
        assert found.message.startswith("identity.age: ")
        found = found.__cause__
    assert isinstance(found, allowed), repr(found)
    return caught.value


# what a flip may raise, by where it lands; everything is exit 4 except a damaged stanza,
# which age cannot tell from a key that is not ours (exit 3)
HEADER = (AgeHeaderError,)
MAC = (AgeHeaderError, AgeHeaderMacError)


def vault_flip_classes(data: bytes, index: int) -> tuple[type[KeyvaultError], ...]:
    stanzas = stanza_span(data)
    header_end = data.index(b"\n", data.index(b"\n---") + 1) + 1
    if index < stanzas.start:
        return HEADER
    if index in stanzas:
        return (WrongPassphrase, AgeHeaderError)
    if index < header_end:
        return MAC
    return (AgePayloadError,)


@pytest.mark.slow
def test_every_byte_flip_of_vault_age_is_refused(sample: Sample, tmp_path: Path) -> None:
    read = vault_reader(sample, tmp_path)
    cases = flips(sample.vault)
    for index, mask, bad in cases:
        error = expect_refused(lambda bad=bad: read(bad), vault_flip_classes(sample.vault, index))
        expected = EXIT_AUTH if isinstance(error, WrongPassphrase) else EXIT_DAMAGED
        assert error.exit_code == expected, (index, mask)
    assert len(cases) == len(FLIP_MASKS) * len(sample.vault) > 1500


def test_every_truncation_of_vault_age_is_refused(sample: Sample, tmp_path: Path) -> None:
    read = vault_reader(sample, tmp_path)
    for length in range(len(sample.vault)):
        allowed = truncation_classes(sample.vault, length)
        error = expect_refused(lambda n=length: read(sample.vault[:n]), allowed)
        assert error.exit_code == EXIT_DAMAGED


def test_the_untouched_vault_still_opens(sample: Sample, tmp_path: Path) -> None:
    """The loops above prove something only if the same reader opens the original."""
    doc = vault_reader(sample, tmp_path)(sample.vault)
    assert [e.name for e in doc.entries] == ["canary"]  # type: ignore[attr-defined]


def truncation_classes(data: bytes, length: int) -> tuple[type[KeyvaultError], ...]:
    """Cut before the 16-byte payload nonce is whole: a header error; after: a payload one."""
    header_end = data.index(b"\n", data.index(b"\n---") + 1) + 1
    return (AgeHeaderError,) if length < header_end + 16 else (AgePayloadError,)


def identity_flip_classes(data: bytes, index: int) -> tuple[type[KeyvaultError], ...]:
    if index in stanza_span(data):  # salt, work factor, wrapped key: "wrong passphrase"
        return (WrongPassphrase, AgeHeaderError, WorkFactorTooHigh)
    return vault_flip_classes(data, index)


@pytest.mark.slow
def test_every_byte_flip_of_identity_age_is_refused(sample: Sample) -> None:
    passphrase = Secret(PASSPHRASE)
    for index, mask, bad in flips(sample.identity):
        allowed = identity_flip_classes(sample.identity, index)
        error = expect_refused(lambda bad=bad: open_identity(bad, passphrase), allowed)
        assert error.exit_code in (EXIT_AUTH, EXIT_DAMAGED), (index, mask)
    assert open_identity(sample.identity, passphrase).to_string() == sample.identity_text


def test_every_truncation_of_identity_age_is_refused(sample: Sample) -> None:
    passphrase = Secret(PASSPHRASE)
    for length in range(len(sample.identity)):
        error = expect_refused(
            lambda n=length: open_identity(sample.identity[:n], passphrase),
            truncation_classes(sample.identity, length),
        )
        assert error.exit_code == EXIT_DAMAGED


# --- the same damage through the CLI: exit code, empty stdout -----------------------------


def library_exit(sample: Sample, tmp_path: Path, target: str, data: bytes) -> int:
    try:
        if target == "vault.age":
            vault_reader(sample, tmp_path / str(time.monotonic_ns()))(data)
        else:
            open_identity(data, Secret(PASSPHRASE))
    except KeyvaultError as exc:
        return exc.exit_code
    raise AssertionError("damaged file was accepted")


def damaged_samples(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    spans = [range(0, 22), stanza_span(data), range(stanza_span(data).stop, len(data))]
    chosen = [rng.choice(span) for span in spans for _ in range(2)]
    out = [bytes(b ^ 1 if i == pos else b for i, b in enumerate(data)) for pos in chosen]
    out += [data[:n] for n in (0, len(data) // 2, len(data) - 1)]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", ["vault.age", "identity.age"])
def test_damaged_files_through_the_cli(
    target: str, sample: Sample, cli: Cli, tmp_path: Path
) -> None:
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    (cli.home / "identity.age").write_bytes(sample.identity)
    (cli.home / "vault.age").write_bytes(sample.vault)
    cli.ok("trust", "--reset")  # another vault replaced this one on purpose (issue 15's pin)
    assert "canary" in cli.ok("list").out
    original = sample.vault if target == "vault.age" else sample.identity
    cases = damaged_samples(original, seed=len(original))
    expected = [library_exit(sample, tmp_path, target, bad) for bad in cases]

    def run(bad: bytes) -> tuple[int, str, str]:
        home = tmp_path / f"home-{hash(bad) & 0xFFFFFFFF:x}"
        home.mkdir(mode=0o700)
        for name in ("identity.age", "vault.age"):
            (home / name).write_bytes((cli.home / name).read_bytes())
        (home / target).write_bytes(bad)
        result = cli("list", env={"KEYVAULT_HOME": str(home)})
        return result.code, result.out, result.err

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, cases))
    for want, (code, out, err) in zip(expected, results, strict=True):
        assert code == want
        assert out == ""
        assert err.startswith("keyvault: error: ") and "Traceback" not in err


# --- a work factor above the cap ----------------------------------------------------------


@pytest.mark.parametrize("factor", [b"23", b"40", b"64", b"999", b"9" * 5000])
def test_a_raised_work_factor_fails_fast(sample: Sample, factor: bytes) -> None:
    line_end = sample.identity.index(b"\n", sample.identity.index(b"-> scrypt"))
    line = sample.identity[:line_end]
    assert line.endswith(b" %d" % CHEAP_LOG_N)
    crafted = line[: line.rindex(b" ") + 1] + factor + sample.identity[line_end:]
    started = time.perf_counter()
    with pytest.raises(DamagedIdentity) as caught:  # named as identity.age's damage
        open_identity(crafted, Secret(PASSPHRASE))
    assert time.perf_counter() - started < 1.0  # scrypt at log2 N = 23 alone takes seconds
    assert isinstance(caught.value.__cause__, WorkFactorTooHigh)
    assert caught.value.exit_code == EXIT_DAMAGED
    assert len(str(caught.value)) < 120  # 5000 digits are not echoed back


def test_a_raised_work_factor_through_the_cli(vault_cli: Cli, sample: Sample) -> None:
    crafted = sample.identity.replace(b" %d\n" % CHEAP_LOG_N, b" 30\n", 1)
    (vault_cli.home / "identity.age").write_bytes(crafted)
    result = vault_cli("list")
    assert result.code == EXIT_DAMAGED
    assert result.out == ""
    assert "work factor 30 is above the limit of 22" in result.err


def test_the_cap_is_checked_before_any_scrypt_work() -> None:
    """ScryptIdentity's own cap: a file at the cap + 1 fails without deriving a key."""
    sealed = age.encrypt(b"x", [age.ScryptRecipient("pw", log_n=CHEAP_LOG_N + 1)])
    with pytest.raises(WorkFactorTooHigh):
        age.decrypt(sealed, [age.ScryptIdentity("pw", max_log_n=CHEAP_LOG_N)])
