"""Key files (member keys version 2, naming their campaign and chain; keeper and relay keys
version 1), public-key formats, addresses and ECIES wrapping (no chain)."""

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
    KIND_RELAY,
    KeyKind,
    KeyPair,
    MemberKey,
    address_of_public_key,
    compress_public_key,
    compressed_public_key,
    generate_key_file,
    key_file_bytes,
    load_key_file,
    parse_key_file,
    parse_public_key,
    public_key_64,
    unwrap,
    wrap,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- key files

CAMPAIGN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
CHAIN = 31337


def member_file(path: Path, campaign: str = CAMPAIGN, chain_id: int = CHAIN) -> KeyPair:
    return generate_key_file(path, KIND_MEMBER, campaign=campaign, chain_id=chain_id)


def test_generate_creates_0600_member_file_with_documented_content(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    old = os.umask(0)  # even with a permissive umask the file is private
    try:
        pair = member_file(path, campaign=CAMPAIGN.lower())
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    raw = path.read_bytes()
    assert (
        raw
        == (
            '{"version":2,"kind":"spartacus-member-key","chain_id":31337,'
            f'"campaign":"{CAMPAIGN}","private_key":"0x{pair.secret_bytes().hex()}"}}\n'
        ).encode()
    )
    assert raw == key_file_bytes(pair, KIND_MEMBER, campaign=CAMPAIGN, chain_id=CHAIN)
    loaded = load_key_file(path, KIND_MEMBER, campaign=CAMPAIGN, chain_id=CHAIN)
    assert isinstance(loaded, MemberKey) and loaded.public_key == pair.public_key
    assert (loaded.campaign, loaded.chain_id) == (CAMPAIGN, CHAIN)  # checksummed, whatever was given
    assert loaded.secret_bytes() == pair.secret_bytes()
    # without the campaign to check against, it still loads (and says which campaign it is for)
    assert load_key_file(path, KIND_MEMBER).campaign == CAMPAIGN  # type: ignore[attr-defined]


def test_a_member_key_file_names_its_campaign_and_chain() -> None:
    pair = KeyPair.generate()
    for kwargs in ({}, {"campaign": CAMPAIGN}, {"chain_id": CHAIN}):
        with pytest.raises(InputError, match="names its campaign and chain: pass campaign= and chain_id="):
            key_file_bytes(pair, KIND_MEMBER, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown key kind 'spartacus-other-key'"):
        key_file_bytes(pair, "spartacus-other-key")  # type: ignore[arg-type]


def test_a_member_key_of_another_campaign_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    member_file(path)
    with pytest.raises(KeyFileError) as info:
        load_key_file(path, KIND_MEMBER, campaign=OTHER.lower(), chain_id=CHAIN)
    message = str(info.value)
    assert f"is the member key of campaign {CAMPAIGN}, not of {OTHER}" in message
    assert "reusing it would link your two pledges" in message and message.count("\n") == 0
    # the same campaign in another letter case is the same campaign
    assert load_key_file(path, KIND_MEMBER, campaign=CAMPAIGN.upper().replace("0X", "0x"), chain_id=CHAIN)


def test_a_member_key_of_another_chain_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    member_file(path)
    with pytest.raises(KeyFileError, match="is a member key for chain 31337, not chain 1: use the key file"):
        load_key_file(path, KIND_MEMBER, campaign=CAMPAIGN, chain_id=1)


def test_parse_key_file_checks_an_upload_the_same_way() -> None:
    pair = KeyPair.generate()
    raw = key_file_bytes(pair, KIND_MEMBER, campaign=CAMPAIGN, chain_id=CHAIN)
    assert parse_key_file(raw, KIND_MEMBER, campaign=CAMPAIGN, chain_id=CHAIN).public_key == pair.public_key
    with pytest.raises(KeyFileError, match=f"upload.key is the member key of campaign {CAMPAIGN}, not of {OTHER}"):
        parse_key_file(raw, KIND_MEMBER, campaign=OTHER, name="upload.key")
    with pytest.raises(KeyFileError, match="holds a spartacus-member-key, but a spartacus-keeper-key is needed"):
        parse_key_file(raw, KIND_KEEPER)


@pytest.mark.parametrize("kind", [KIND_KEEPER, KIND_RELAY])
def test_keeper_and_relay_files_are_version_1(tmp_path: Path, kind: KeyKind) -> None:
    path = tmp_path / "long-term.key"
    pair = generate_key_file(path, kind)
    assert _mode(path) == 0o600
    doc = json.loads(path.read_bytes())
    assert doc == {"version": 1, "kind": kind, "private_key": "0x" + pair.secret_bytes().hex()}
    loaded = load_key_file(path, kind)
    assert loaded.public_key == pair.public_key and not isinstance(loaded, MemberKey)
    # a campaign to check against does not apply to a long-term key
    assert load_key_file(path, kind, campaign=OTHER, chain_id=1) == pair


def test_a_given_pair_is_written_as_is(tmp_path: Path) -> None:
    pair = KeyPair.generate()
    assert generate_key_file(tmp_path / "k", KIND_KEEPER, pair=pair) is pair
    assert load_key_file(tmp_path / "k", KIND_KEEPER).secret_bytes() == pair.secret_bytes()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "member.key"
    pair = member_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite the existing file"):
        member_file(path, campaign=OTHER)
    assert path.read_bytes() == before
    assert load_key_file(path, KIND_MEMBER).public_key == pair.public_key


def test_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "member.key"
    link.symlink_to(target)
    with pytest.raises(KeyFileError, match="refusing to overwrite|cannot create"):
        member_file(link)
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601, 0o610])
def test_refuses_group_or_other_bits(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "member.key"
    member_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_key_file(path, KIND_MEMBER)
    assert f"chmod 600 {path}" in str(info.value)
    assert f"{mode:04o}" in str(info.value)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError, match=f"keeper init --key-file {path}"):
        load_key_file(path, KIND_KEEPER)
    with pytest.raises(KeyFileError, match=f"relay init --key-file {path}"):
        load_key_file(path, KIND_RELAY)
    with pytest.raises(KeyFileError, match=f"no key file at {path}; create one by passing --member-key-file"):
        load_key_file(path, KIND_MEMBER)


def test_missing_folder_on_create(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="the folder .* does not exist; create it first"):
        member_file(tmp_path / "missing" / "member.key")


def test_wrong_kind_is_refused_without_leaking_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keeper.key"
    pair = generate_key_file(path, KIND_KEEPER)
    with pytest.raises(
        KeyFileError, match="holds a spartacus-keeper-key, but a spartacus-member-key is needed"
    ) as info:
        load_key_file(path, KIND_MEMBER)
    assert pair.secret_bytes().hex() not in str(info.value)
    assert pair.secret_bytes().hex() not in repr(info.value.context)


_KEY = b'"private_key":"0x' + b"11" * 32 + b'"'
_V2 = b'{"version":2,"kind":"spartacus-member-key","chain_id":31337,"campaign":"' + CAMPAIGN.encode() + b'",'


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not JSON"),
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "expected the keys version, kind, private_key"),
        (b'{"kind":"spartacus-member-key",' + _KEY + b"}", "expected the keys version"),
        (b'{"version":3,"kind":"spartacus-member-key",' + _KEY + b"}", "unsupported version"),
        (b'{"version":true,"kind":"spartacus-member-key",' + _KEY + b"}", "unsupported version"),
        (b'{"version":1,"kind":"spartacus-member-key",' + _KEY + b"}", "a member key file is version 2"),
        (b'{"version":2,"kind":"spartacus-member-key",' + _KEY + b"}", "expected the keys campaign, chain_id"),
        (_V2 + _KEY + b',"x":1}', "expected the keys campaign, chain_id"),
        (b'{"version":1,"kind":"other",' + _KEY + b"}", "unknown kind"),
        (_V2 + b'"private_key":"0x' + b"11" * 31 + b'"}', "private_key must be 0x and 64 hex digits"),
        (_V2 + b'"private_key":"' + b"11" * 32 + b'"}', "private_key must be 0x and 64 hex digits"),
        (_V2 + b'"private_key":"0x' + b"zz" * 32 + b'"}', "private_key must be 0x and 64 hex digits"),
        (_V2 + b'"private_key":"0x' + b"00" * 32 + b'"}', "not a valid secp256k1 key"),
        (_V2 + b'"private_key":"0x' + b"ff" * 32 + b'"}', "not a valid secp256k1 key"),
        (_V2.replace(CAMPAIGN.encode(), b"0x1234") + _KEY + b"}", "campaign must be 0x and 40 hex digits"),
        (_V2.replace(b"31337", b"-1") + _KEY + b"}", "chain_id must be a non-negative integer"),
        (_V2.replace(b"31337", b'"31337"') + _KEY + b"}", "chain_id must be a non-negative integer"),
        (b" " * 5000, "too large"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "member.key"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileError, match=f"is not a Spartacus key file \\(.*{message}"):
        load_key_file(path, KIND_MEMBER)


def test_a_version_2_keeper_file_is_refused() -> None:
    raw = (
        b'{"version":2,"kind":"spartacus-keeper-key","chain_id":1,"campaign":"'
        + CAMPAIGN.encode()
        + b'",'
        + _KEY
        + b"}"
    )
    with pytest.raises(KeyFileError, match="other keys are version 1"):
        parse_key_file(raw, KIND_KEEPER)


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="is not a regular file"):
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
