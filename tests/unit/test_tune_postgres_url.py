"""``tune.storage`` as a PostgreSQL server's URL, without a server: what a bad URL or a missing driver says (one line
naming the key, the value without its password, and what is allowed), and that a server nobody answers for is
refused at once, in this process (a bound port that does not listen refuses every connection)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlsweep.tuning.space import STORAGE_ALLOWED, BadSpace, load_spec, redact
from rlsweep.tuning.study import storage_for

PASSWORD = "s3cret"


def refused(storage: str) -> str:
    with pytest.raises(BadSpace) as e:
        load_spec("smoke", [f"tune.storage={storage}"])
    return str(e.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"mysql://u:{PASSWORD}@db.example.org/studies", "mysql:// is not a server rlsweep tune keeps studies on"),
        (f"postgres://u:{PASSWORD}@db.example.org/studies", "postgres:// is not a server"),
        ("postgresql://db.example.org/studies", "no user (user@ before the host)"),
        (f"postgresql://u:{PASSWORD}@/studies", "no host (user@host)"),
        (f"postgresql://u:{PASSWORD}@db.example.org:abc/studies", "the port 'abc' is not a number from 1 to 65535"),
        (f"postgresql://u:{PASSWORD}@db.example.org:70000/studies", "the port '70000' is not a number"),
        (f"postgresql://u:{PASSWORD}@db.example.org:0/studies", "the port '0' is not a number"),
        (f"postgresql://u:{PASSWORD}@db.example.org", "no database name"),
        (f"postgresql://u:{PASSWORD}@db.example.org/a/b", "no database name"),
        (f"postgresql://u:{PASSWORD}/x@db.example.org/studies", "an @, / or # in the password must be written %40"),
        (f"postgresql://u:{PASSWORD}@x@db.example.org/studies", "an @, / or # in the password must be written %40"),
    ],
)
def test_a_bad_server_url_is_one_line_naming_what_is_wrong_without_the_password(url: str, why: str) -> None:
    message = refused(url)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith(f"tune.storage='{url.partition('://')[0]}://")
    assert f": {why}" in message
    assert message.endswith(f"; allowed: {STORAGE_ALLOWED}")
    assert "postgresql://user[:password]@host[:port]/database" in STORAGE_ALLOWED


@pytest.mark.parametrize("storage", ["jornal", "5", "postgresql"])
def test_an_unknown_storage_names_the_three_kinds(storage: str) -> None:
    message = refused(storage)
    assert message.startswith("tune.storage=")
    assert ": unknown storage; allowed: journal, sqlite, or a PostgreSQL" in message


@pytest.mark.parametrize(
    "url",
    [
        "journal",
        "sqlite",
        "postgresql://rlsweep:rlsweep@localhost:55432/rlsweep",
        "postgresql+psycopg://alice@db.example.org/studies?sslmode=require",
        "postgresql://alice:p%40ss%2Fw@db.example.org/studies",
        "postgresql://alice:p:w@[::1]:5432/studies",
    ],
)
def test_the_storages_allowed_are_kept_as_typed(url: str) -> None:
    assert load_spec("smoke", [f"tune.storage={url}"]).storage == url


def test_redact_hides_the_password_only() -> None:
    assert redact("postgresql://u:pw@h:5/db?sslmode=require") == "postgresql://u:***@h:5/db?sslmode=require"
    assert redact("postgresql://u:p@w/x@h/db") == "postgresql://u:***@h/db"  # everything to the last @ is user info
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("journal") == "journal"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for as long as the test runs: bound (no one else can take it), not listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_a_refusing_server_is_one_line_naming_the_url_without_the_password(tmp_path: Path, closed_port: int) -> None:
    url = f"postgresql://rlsweep:{PASSWORD}@127.0.0.1:{closed_port}/rlsweep"
    with pytest.raises(BadSpace) as e:
        storage_for(tmp_path, url)
    message = str(e.value)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith(f"tune.storage=postgresql://rlsweep:***@127.0.0.1:{closed_port}/rlsweep: the server "
                              "refused or did not answer (")  # fmt: skip
    assert "Connection refused" in message
    assert message.endswith("launchers/postgres-local.sh start for a local one)")
    assert list(tmp_path.iterdir()) == []  # no journal or SQLite file instead


def test_without_the_driver_the_url_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets where it is not installed
    with pytest.raises(BadSpace) as e:
        storage_for(tmp_path, f"postgresql://rlsweep:{PASSWORD}@localhost:55432/rlsweep")
    assert str(e.value) == (
        "tune.storage=postgresql://rlsweep:***@localhost:55432/rlsweep: no PostgreSQL driver (psycopg) in this "
        "Python; allowed: pip install 'rlsweep[tune-server]', or tune.storage=journal"
    )
