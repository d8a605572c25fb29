"""The envelope format: round trips, and every tampering the chunk AAD is meant to catch."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from mindharbor.files.crypto import (
    RECORD_OVERHEAD,
    Envelope,
    FileIntegrityError,
    StreamDecryptor,
    StreamEncryptor,
    kek_id,
    new_data_key,
    new_kek_text,
    open_envelope,
    parse_kek,
    rewrap_envelope,
    seal_envelope,
)

CHUNK = 1024
NAME = "0123456789abcdef0123456789abcdef_note.txt"


def encrypt(plain: bytes, key: bytes, name: str = NAME, pieces: int = 7) -> list[bytes]:
    enc = StreamEncryptor(key, name, CHUNK)
    records: list[bytes] = []
    step = max(1, len(plain) // pieces)
    for i in range(0, len(plain), step):
        records.extend(enc.update(plain[i : i + step]))
    records.append(enc.finalize())
    return records


def decrypt(blob: bytes, key: bytes, name: str = NAME, size: int | None = None) -> bytes:
    dec = StreamDecryptor(key, name, CHUNK, size)
    out = bytearray()
    for i in range(0, len(blob), 333):  # arbitrary read boundaries
        for piece in dec.update(blob[i : i + 333]):
            out += piece
    out += dec.finalize()
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    key = new_data_key()
    plain = os.urandom(size)
    records = encrypt(plain, key)
    assert len(records) == max(1, -(-size // CHUNK))
    assert all(len(r) == CHUNK + RECORD_OVERHEAD for r in records[:-1])
    assert decrypt(b"".join(records), key, size=size) == plain


def test_ciphertext_hides_plaintext() -> None:
    key = new_data_key()
    plain = b"PATIENT-MARKER-7f3a " * 500
    blob = b"".join(encrypt(plain, key))
    assert b"PATIENT-MARKER" not in blob


def test_flipped_bit_is_detected() -> None:
    key = new_data_key()
    blob = bytearray(b"".join(encrypt(os.urandom(3 * CHUNK), key)))
    blob[CHUNK + RECORD_OVERHEAD + 40] ^= 1
    with pytest.raises(FileIntegrityError):
        decrypt(bytes(blob), key)


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    key = new_data_key()
    records = encrypt(os.urandom(3 * CHUNK + 10), key)
    with pytest.raises(FileIntegrityError):
        decrypt(b"".join(records[:-1]), key)  # drop the final chunk: the new last is not final


def test_truncation_inside_a_chunk_is_detected() -> None:
    key = new_data_key()
    blob = b"".join(encrypt(os.urandom(2 * CHUNK + 10), key))
    for cut in (1, 20, RECORD_OVERHEAD + 5):
        with pytest.raises(FileIntegrityError):
            decrypt(blob[:-cut], key)
    with pytest.raises(FileIntegrityError):
        decrypt(b"", key)


def test_reordered_chunks_are_detected() -> None:
    key = new_data_key()
    records = encrypt(os.urandom(4 * CHUNK), key)
    swapped = [records[1], records[0], *records[2:]]
    with pytest.raises(FileIntegrityError):
        decrypt(b"".join(swapped), key)


def test_appended_chunk_is_detected() -> None:
    key = new_data_key()
    records = encrypt(os.urandom(2 * CHUNK), key)
    with pytest.raises(FileIntegrityError):
        decrypt(b"".join([*records, records[-1]]), key)


def test_chunks_from_another_file_are_detected() -> None:
    key = new_data_key()
    records = encrypt(os.urandom(2 * CHUNK), key)
    with pytest.raises(FileIntegrityError):
        decrypt(b"".join(records), key, name="ffffffffffffffffffffffffffffffff_other.txt")
    with pytest.raises(FileIntegrityError):
        decrypt(b"".join(records), new_data_key())


def test_size_mismatch_with_envelope_is_detected() -> None:
    key = new_data_key()
    blob = b"".join(encrypt(b"x" * 100, key))
    with pytest.raises(FileIntegrityError):
        decrypt(blob, key, size=99)


def _envelope(kek: bytes, key: bytes) -> Envelope:
    return seal_envelope(
        kek,
        key,
        name=NAME,
        content_type="text/plain",
        size=10,
        chunk_size=CHUNK,
        created=1.5,
        owner="u1",
    )


def test_envelope_wraps_and_binds_its_description() -> None:
    kek, key = parse_kek(new_kek_text()), new_data_key()
    envelope = Envelope.from_bytes(_envelope(kek, key).to_bytes())
    assert open_envelope(kek, envelope) == key
    assert envelope.kek_id == kek_id(kek)
    for change in (
        {"content_type": "text/html"},
        {"size": 11},
        {"name": "x" + NAME},
        {"owner": "u2"},
        {"chunk_size": CHUNK * 2},
    ):
        with pytest.raises(FileIntegrityError):
            open_envelope(kek, replace(envelope, **change))  # type: ignore[arg-type]
    with pytest.raises(FileIntegrityError):
        open_envelope(parse_kek(new_kek_text()), envelope)


def test_rewrap_keeps_the_data_key() -> None:
    old, new, key = parse_kek(new_kek_text()), parse_kek(new_kek_text()), new_data_key()
    envelope = rewrap_envelope(_envelope(old, key), old, new)
    assert open_envelope(new, envelope) == key
    assert envelope.kek_id == kek_id(new)
    with pytest.raises(FileIntegrityError):
        open_envelope(old, envelope)


def test_kek_forms() -> None:
    raw = bytes(range(32))
    assert parse_kek(raw.hex()) == raw
    import base64

    assert parse_kek(base64.b64encode(raw).decode()) == raw
    assert parse_kek(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw
    for bad in ("short", base64.b64encode(b"x" * 16).decode(), ""):
        with pytest.raises(ValueError):
            parse_kek(bad)
    with pytest.raises(FileIntegrityError):
        Envelope.from_bytes(b"{not json")
