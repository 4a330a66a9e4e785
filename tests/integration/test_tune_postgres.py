"""``rlsweep tune`` with its studies on a real PostgreSQL server (``tune.storage=postgresql://...``), the one that
``launchers/postgres-local.sh start`` brings up (``tests/system-setup.sh`` starts it; ``RLSWEEP_PG_URL`` names another):
the trials land on the server, a second tuner resumes them from there without training any again, two sweeps with
the same arms keep apart, a sweep of the same name elsewhere is refused, and four tuners that meet an empty database
all get it. A server that refuses is one line and exit 2 before anything starts.

The tests fail, saying how to start the server, when it does not answer: they are what checks the server path.
Each test's sweeps have names of their own on the shared server, and their studies are deleted after it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from procs import ENV, REPO, ledger, wait_for

from rlsweep.tuning.space import redact

pytestmark = [pytest.mark.e2e]

URL = ENV.get("RLSWEEP_PG_URL", "postgresql://rlsweep:rlsweep@localhost:55432/rlsweep")
# One arm, two trials of one iteration of the fake env at one rung, one confirm run of the same length.
GRID = ["motivation=none", "env=fake", "budget=smoke", "debug=smoke", "logger=none", "tune=smoke", "tune.trials=2",
        "tune.rungs=1", "tune.steps=64", "tune.fresh_seeds=1", "tune.confirm_steps=64"]  # fmt: skip


def tune(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlsweep.cli.commands", "tune", *GRID, *args], cwd=cwd,
                          capture_output=True, text=True, env=ENV, timeout=600)  # fmt: skip


def libpq(url: str) -> str:
    """The URL as psycopg takes it (no +driver)."""
    return "postgresql://" + url.partition("://")[2]


def sqlalchemy_url(url: str) -> str:
    """The URL as SQLAlchemy (Optuna) takes it, with psycopg named as the tuner names it."""
    return "postgresql+psycopg://" + url.partition("://")[2]


def out(p: subprocess.CompletedProcess[str]) -> str:
    return p.stdout[-3000:] + p.stderr[-3000:]


@pytest.fixture(scope="module")
def server() -> str:
    """The server's URL, once it answers; else the test fails saying how to start it (no skip: this is the test of
    the server path, and CI starts the server)."""
    import psycopg

    why = ""
    try:
        with psycopg.connect(libpq(URL), connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        why = " ".join(str(e).split())
    if why:
        pytest.fail(f"no PostgreSQL answers at {redact(URL)} ({why}): start the local one with "
                    "`launchers/postgres-local.sh start` (or set RLSWEEP_PG_URL to one that answers)",
                    pytrace=False)  # fmt: skip
    return URL


@pytest.fixture
def names(server: str) -> Iterator[list[str]]:
    """Sweep names no earlier test run used (the server outlives test sessions); their studies are deleted after."""
    import optuna

    prefix = f"pg{uuid.uuid4().hex[:8]}"
    yield [f"{prefix}a", f"{prefix}b"]
    storage = sqlalchemy_url(server)
    for name in optuna.get_all_study_names(storage):
        if name.startswith(prefix):
            optuna.delete_study(study_name=name, storage=storage)


def studies(server: str, sweep: str) -> dict[str, list[dict[str, Any]]]:
    """The server's studies of sweep ``sweep``, by name: each trial's number, state, params, value and user attrs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = sqlalchemy_url(server)
    found = {}
    for name in optuna.get_all_study_names(storage):
        if name.startswith(f"{sweep}/"):
            study = optuna.load_study(study_name=name, storage=storage)
            found[name] = [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
                            "attrs": t.user_attrs} for t in study.get_trials(deepcopy=False)]  # fmt: skip
    return found


def test_the_trials_live_on_the_server_a_second_tuner_resumes_them_and_sweeps_keep_apart(
    tmp_path: Path, server: str, names: list[str]
) -> None:
    """One story, to train as few runs as it can: sweep a's trials on the server, resumed by a second tuner; sweep b
    with the same arm beside it; sweep a's name from another directory."""
    a, b = names[0], names[1]
    search = tmp_path / "sweeps" / a
    # A metric the trials do not log stops the tuner after they trained, before any is told (exit 2): the trials
    # are asked and running on the server, and a tuner with the right metric has to take them from there.
    first = tune(tmp_path, f"tune.storage={server}", f"sweep_name={a}", "tune.metric=no/such")
    assert first.returncode == 2, out(first)
    assert first.stderr.strip().startswith("rlsweep tune: error: tune.metric=no/such: not logged by the trials")
    asked = studies(server, a)
    assert len(asked) == 1, asked
    ((study, trials),) = asked.items()
    arm = study.removeprefix(f"{a}/")
    assert [(t["number"], t["state"]) for t in trials] == [(0, "RUNNING"), (1, "RUNNING")]
    assert [t["attrs"]["run_id"] for t in trials] == [f"{arm}-t0-s1", f"{arm}-t1-s2"]
    assert {r["status"] for r in ledger(search).values()} == {"completed"} and len(ledger(search)) == 2
    assert not (search / "tune.journal").exists() and not (search / "tune.db").exists()

    second = tune(tmp_path, f"tune.storage={server}", f"sweep_name={a}")
    assert second.returncode == 0, out(second)
    assert "skipping 2 point(s): 2 completed" in second.stdout  # the asked trials' points, already trained
    told = studies(server, a)
    assert [(t["number"], t["state"], t["params"]) for t in told[study]] == [
        (n, "COMPLETE", t["params"]) for n, t in enumerate(trials)
    ]
    records = ledger(search)
    assert len(records) == 2 and all(r["attempts"] == 1 for r in records.values())  # no trial trained again
    state = json.loads((search / "tune.json").read_text())
    # The URL as typed may hold a password: tune.json keeps it without (the report reads and copies the file).
    typed = urlsplit(server)
    assert state["spec"]["storage"] == redact(server) and f":{typed.password}@" not in json.dumps(state)
    assert [(t["number"], t["params"], t["value"]) for t in state["arms"][arm]["trials"]] == [
        (t["number"], t["params"], t["value"]) for t in told[study]
    ]
    assert not (search / "tune.journal").exists() and not (search / "tune.db").exists()

    # Sweep b, the same arm on the same server: a study of its own, searched anew; a's is untouched.
    third = tune(tmp_path, f"tune.storage={server}", f"sweep_name={b}")
    assert third.returncode == 0, out(third)
    assert "rung 1 of 1: 2 trial(s) to 64 agent steps" in third.stdout  # b searched, it did not read a's trials
    assert len(ledger(tmp_path / "sweeps" / b)) == 2
    assert [(t["number"], t["state"]) for t in studies(server, b)[f"{b}/{arm}"]] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert studies(server, a) == told

    # Sweep a's name in another directory: the server's study a/<arm> is not this sweep's; refused, nothing run.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fourth = tune(elsewhere, f"tune.storage={server}", f"sweep_name={a}")
    assert fourth.returncode == 2, out(fourth)
    assert fourth.stderr.strip() == (
        f"rlsweep tune: error: tune.storage={redact(server)}: its study {a}/{arm} belongs to the sweep in "
        f"{search.resolve()}, not {(elsewhere / 'sweeps' / a).resolve()} (one name, two sweeps: their trials would "
        "mix); allowed: a sweep_name that no other sweep on this server has"
    )
    assert "rung " not in fourth.stdout and not list((elsewhere / "sweeps").glob("*/*/run.json"))
    assert studies(server, a) == told


def test_tuners_meeting_an_empty_database_all_get_it(tmp_path: Path, server: str) -> None:
    """Optuna creates its tables on first use; tuners doing it at once on an empty database collide (a duplicate
    key) unless one waits for the other: each of four processes opens the storage as soon as all four are ready."""
    import psycopg

    database = f"rlsweep_t{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(server), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = server.rpartition("/")[0] + f"/{database}"
    opener = (
        "import sys, time, pathlib\n"
        "from rlsweep.tuning.study import storage_for\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "(go.parent / f'ready-{sys.argv[3]}').touch()\n"
        "while not go.exists():\n"
        "    time.sleep(0.01)\n"
        "storage_for(go.parent / 'sweep', sys.argv[1])\n"
    )
    go = tmp_path / "go"
    procs: list[subprocess.Popen[str]] = []
    try:
        procs = [subprocess.Popen([sys.executable, "-c", opener, url, str(go), str(i)], cwd=REPO, env=ENV,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for i in range(4)]  # fmt: skip
        wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 4 or any(p.poll() is not None for p in procs), 120,
                 "four processes ready")  # fmt: skip
        go.touch()
        results = [(p.communicate(timeout=120)[0], p.returncode) for p in procs]
        assert [code for _, code in results] == [0, 0, 0, 0], results
        with psycopg.connect(libpq(url)) as conn:
            assert conn.execute("SELECT count(*) FROM version_info").fetchone() == (1,)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        with psycopg.connect(libpq(server), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for as long as the test runs: bound (no one else can take it), not listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_a_server_that_refuses_stops_the_tuner_in_one_line_before_anything_starts(
    tmp_path: Path, closed_port: int
) -> None:
    url = f"postgresql://rlsweep:s3cret@127.0.0.1:{closed_port}/rlsweep"
    p = tune(tmp_path, f"tune.storage={url}", "sweep_name=refused")
    assert p.returncode == 2, out(p)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "s3cret" not in p.stdout + p.stderr, out(p)
    assert lines[0].startswith(f"rlsweep tune: error: tune.storage=postgresql://rlsweep:***@127.0.0.1:{closed_port}"
                               "/rlsweep: the server refused or did not answer (")  # fmt: skip
    assert "rung " not in p.stdout and not (tmp_path / "sweeps").exists()  # not even an empty sweep folder
