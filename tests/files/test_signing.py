"""Signed URLs: valid only as minted, only until they expire."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from mindharbor.files.signing import UrlSigner, derive_signing_key

NAME = "0123456789abcdef0123456789abcdef_scan 1.pdf"


def signer(now: list[float], key: bytes = b"k" * 32) -> UrlSigner:
    return UrlSigner(key, "app", "http://h/parse/", 300, clock=lambda: now[0])


def parts(url: str) -> tuple[str, dict[str, str]]:
    split = urlsplit(url)
    name = unquote(split.path.rsplit("/", 1)[1])
    return name, {k: v[0] for k, v in parse_qs(split.query).items()}


def test_minted_url_verifies_until_it_expires() -> None:
    now = [1_000_000.0]
    s = signer(now)
    url = s.url(NAME, "user1")
    assert url.startswith("http://h/parse/files/app/0123456789abcdef0123456789abcdef_scan%201.pdf?")
    name, q = parts(url)
    assert name == NAME and q["expires"] == "1000300" and q["by"] == "user1"
    assert s.verify(name, q["expires"], q["by"], q["sig"])
    now[0] = 1_000_300.0
    assert s.verify(name, q["expires"], q["by"], q["sig"])
    now[0] = 1_000_301.0
    assert not s.verify(name, q["expires"], q["by"], q["sig"])


def test_any_alteration_fails() -> None:
    now = [1_000_000.0]
    s = signer(now)
    name, q = parts(s.url(NAME, "user1"))
    sig = q["sig"]
    assert not s.verify(name + "x", q["expires"], q["by"], sig)
    assert not s.verify(name, str(int(q["expires"]) + 3600), q["by"], sig)
    assert not s.verify(name, q["expires"], "user2", sig)
    assert not s.verify(name, q["expires"], None, sig)
    assert not s.verify(name, q["expires"], q["by"], sig[:-1] + ("A" if sig[-1] != "A" else "B"))
    assert not s.verify(name, q["expires"], q["by"], None)
    assert not s.verify(name, None, q["by"], sig)
    assert not s.verify(name, "-5", q["by"], sig)
    assert not s.verify(name, q["expires"], q["by"], "x" * 5000)
    other = UrlSigner(b"o" * 32, "app", "http://h/parse", 300, clock=lambda: now[0])
    assert not other.verify(name, q["expires"], q["by"], sig)
    other_app = UrlSigner(b"k" * 32, "app2", "http://h/parse", 300, clock=lambda: now[0])
    assert not other_app.verify(name, q["expires"], q["by"], sig)


def test_anonymous_mint_has_no_by() -> None:
    now = [5.0]
    s = signer(now)
    name, q = parts(s.url(NAME, None))
    assert "by" not in q
    assert s.verify(name, q["expires"], None, q["sig"])


def test_sign_refs_rewrites_nested_files_without_mutating() -> None:
    s = signer([0.0])
    value = {
        "doc": {"__type": "File", "name": NAME, "url": "http://evil/stale"},
        "list": [{"__type": "File", "name": "a_b.txt"}, {"plain": 1}],
        "n": 3,
    }
    out = s.sign_refs(value, "u")
    assert value["doc"]["url"] == "http://evil/stale"  # input untouched
    assert out["doc"]["url"].startswith("http://h/parse/files/app/")
    assert "sig=" in out["list"][0]["url"]
    assert out["list"][1] == {"plain": 1} and out["n"] == 3


def test_signing_key_is_derived_not_the_kek() -> None:
    kek = bytes(range(32))
    assert derive_signing_key(kek) != kek and len(derive_signing_key(kek)) == 32
