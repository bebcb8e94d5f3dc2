"""Key files, public-key formats, addresses and ECIES wrapping (no chain)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import coincurve
import pytest
from eth_keys.datatypes import PrivateKey as EthPrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from spartacus._exceptions import DecryptionError, InputError, KeyFileError
from spartacus.keys import (
    ECIES_OVERHEAD,
    KIND_KEEPER,
    KIND_MEMBER,
    KeyPair,
    address_of_public_key,
    compress_public_key,
    compressed_public_key,
    generate_key_file,
    load_key_file,
    parse_public_key,
    public_key_64,
    unwrap,
    wrap,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- key files


def test_generate_creates_0600_file_with_documented_content(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    old = os.umask(0)  # even with a permissive umask the file is private
    try:
        pair = generate_key_file(path, KIND_MEMBER)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    doc = json.loads(raw)
    assert doc == {"version": 1, "kind": KIND_MEMBER, "private_key": "0x" + pair.secret_bytes().hex()}
    assert load_key_file(path, KIND_MEMBER) == pair
    assert load_key_file(path, KIND_MEMBER).secret_bytes() == pair.secret_bytes()


def test_keeper_kind_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "keeper.key"
    pair = generate_key_file(path, KIND_KEEPER)
    assert load_key_file(path, KIND_KEEPER).public_key == pair.public_key


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    pair = generate_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_key_file(path)
    assert path.read_bytes() == before
    assert load_key_file(path, KIND_MEMBER) == pair


def test_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "member.key"
    link.symlink_to(target)
    with pytest.raises(KeyFileError):
        generate_key_file(link)
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610])
def test_refuses_group_or_other_bits(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "member.key"
    generate_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_key_file(path, KIND_MEMBER)
    assert f"chmod 600 {path}" in str(info.value)
    assert f"{mode:04o}" in str(info.value)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError, match="keeper init --key-file"):
        load_key_file(path, KIND_KEEPER)
    with pytest.raises(KeyFileError, match="no key file at"):
        load_key_file(path, KIND_MEMBER)


def test_missing_folder_on_create(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        generate_key_file(tmp_path / "missing" / "member.key")


def test_wrong_kind_is_refused_without_leaking_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keeper.key"
    pair = generate_key_file(path, KIND_KEEPER)
    with pytest.raises(KeyFileError, match="spartacus-member-key is needed") as info:
        load_key_file(path, KIND_MEMBER)
    assert pair.secret_bytes().hex() not in str(info.value)
    assert pair.secret_bytes().hex() not in repr(info.value.context)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version":1,"kind":"spartacus-member-key"}',
        b'{"version":2,"kind":"spartacus-member-key","private_key":"0x' + b"11" * 32 + b'"}',
        b'{"version":true,"kind":"spartacus-member-key","private_key":"0x' + b"11" * 32 + b'"}',
        b'{"version":1,"kind":"other","private_key":"0x' + b"11" * 32 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"11" * 31 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"' + b"11" * 32 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"00" * 32 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"ff" * 32 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"zz" * 32 + b'"}',
        b'{"version":1,"kind":"spartacus-member-key","private_key":"0x' + b"11" * 32 + b'","x":1}',
        b"\xff\xfe",
        b" " * 5000,
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "member.key"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileError, match="not a Spartacus key file"):
        load_key_file(path, KIND_MEMBER)


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_key_file(folder, KIND_MEMBER)


def test_repr_and_str_hide_the_secret() -> None:
    pair = KeyPair.generate()
    secret_hex = pair.secret_bytes().hex()
    for text in (repr(pair), str(pair), f"{pair}", repr([pair])):
        assert secret_hex not in text
        assert secret_hex.upper() not in text
        assert "<hidden>" in text
    assert pair.address in repr(pair)


def test_keypair_equality_is_by_public_key() -> None:
    a = KeyPair.generate()
    assert KeyPair.from_secret(a.secret_bytes()) == a
    assert KeyPair.generate() != a


@pytest.mark.parametrize("secret", [b"", b"\x01" * 31, b"\x00" * 32, b"\xff" * 32])
def test_invalid_secrets(secret: bytes) -> None:
    with pytest.raises(InputError):
        KeyPair.from_secret(secret)


# --------------------------------------------------------------------------- public keys


def test_formats_agree_with_eth_keys() -> None:
    pair = KeyPair.generate()
    ek = EthPrivateKey(pair.secret_bytes())
    assert pair.public_key == ek.public_key.to_bytes()
    assert pair.compressed == ek.public_key.to_compressed_bytes()
    assert pair.address == ek.public_key.to_checksum_address()
    assert address_of_public_key(pair.public_key) == ek.public_key.to_checksum_address()
    # every private-key flavour gives the same public key
    for priv in (pair, pair.secret_bytes(), coincurve.PrivateKey(pair.secret_bytes()), ek):
        assert public_key_64(priv) == pair.public_key
        assert compressed_public_key(priv) == pair.compressed


def test_parse_public_key_accepts_every_usual_form() -> None:
    pair = KeyPair.generate()
    pub64, pub33 = pair.public_key, pair.compressed
    forms: list[str | bytes] = [
        pub64,
        b"\x04" + pub64,
        pub33,
        pub64.hex(),
        "0x" + pub64.hex(),
        "0X" + pub64.hex().upper(),
        "04" + pub64.hex(),
        "0x" + pub33.hex(),
        "  0x" + pub64.hex() + "\n",
    ]
    for form in forms:
        assert parse_public_key(form) == pub64
        assert compress_public_key(form) == pub33


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x",
        "0xzz",
        "0x" + "11" * 63,
        "0x" + "11" * 66,
        b"\x05" + b"\x11" * 64,  # 65 bytes, wrong prefix
        b"\x04" + b"\x11" * 32,  # 33 bytes, wrong prefix
        b"\x02" + b"\xff" * 32,  # x >= p: not on the curve
        b"\x00" * 64,  # the point (0, 0) is not on the curve
        b"\x01" * 64,
    ],
)
def test_parse_public_key_refuses_garbage(bad: str | bytes) -> None:
    with pytest.raises(InputError):
        parse_public_key(bad)


def test_parse_public_key_refuses_off_curve_point_with_clear_message() -> None:
    pub = bytearray(KeyPair.generate().public_key)
    pub[-1] ^= 1  # same x, y no longer on the curve
    with pytest.raises(InputError, match="not a point on the secp256k1 curve"):
        parse_public_key(bytes(pub))


# --------------------------------------------------------------------------- ECIES


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(min_size=0, max_size=200))
def test_wrap_round_trip_and_constant_overhead(plaintext: bytes) -> None:
    pair = KEY
    for pub in (pair.public_key, pair.compressed, b"\x04" + pair.public_key):
        ct = wrap(pub, plaintext)
        assert len(ct) == len(plaintext) + ECIES_OVERHEAD == len(plaintext) + 97
        assert unwrap(pair, ct) == plaintext


KEY = KeyPair.generate()


def test_unwrap_with_wrong_key_or_tampering_is_decryption_error() -> None:
    ct = wrap(KEY.public_key, b"x" * 33)
    with pytest.raises(DecryptionError):
        unwrap(KeyPair.generate(), ct)
    for pos in (0, 1, 64, 65, 81, 97, len(ct) - 1):
        bad = bytearray(ct)
        bad[pos] ^= 0x40
        with pytest.raises(DecryptionError):
            unwrap(KEY, bytes(bad))
    with pytest.raises(DecryptionError):
        unwrap(KEY, ct[:50])


def test_wrap_to_garbage_key_is_input_error() -> None:
    with pytest.raises(InputError):
        wrap(b"\x02" + b"\xff" * 32, b"secret")
    with pytest.raises(InputError):
        wrap(b"\x02" * 5, b"secret")
