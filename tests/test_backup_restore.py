"""scripts/backup and scripts/restore against a real PostgreSQL server.

The data is made the way an operator's would be: ``migrate``, ``seed_demo``
and ``analyze`` run as commands against a database of their own (never the
pytest-django test database, which lives inside this run's transactions). It
is dumped with scripts/backup, restored with scripts/restore into a second,
new database, and both are then compared: every table's row count, and the
analysis document, both as stored and recomputed from the restored answers.

Needs PostgreSQL (``DATABASE_URL``) and its client tools; without them the
tests are skipped, or fail when ``CI`` is set. Both databases are dropped at
the end, whatever happened.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import _skip_or_fail

REPO_ROOT = Path(__file__).resolve().parent.parent
SLUG = "northwind-fibre"
CLIENT_TOOLS = ("pg_dump", "pg_restore", "psql", "createdb", "dropdb")
# Generous: the slowest step (the first analysis) takes a few seconds.
COMMAND_TIMEOUT = 180


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        _skip_or_fail("backup/restore tests need DATABASE_URL pointing at PostgreSQL")
    missing = [tool for tool in CLIENT_TOOLS if shutil.which(tool) is None]
    if missing:
        _skip_or_fail(f"backup/restore tests need the PostgreSQL client tools; missing: {', '.join(missing)}")
    return url


def _database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name`` (user, password, host and port kept)."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}", fragment=""))


def _env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "1", "ANALYSIS_ENGINE": "tfidf",
           "ANALYSIS_ON_SUBMIT": "0", "PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"}
    # No broker: the commands run their tasks in-process, and nothing they do
    # can reach a worker serving another database in this test run.
    env.pop("REDIS_URL", None)
    # The engine is ANALYSIS_ENGINE's alone (this variable would override it).
    env.pop("GAPSURVEY_THEME_ENGINE", None)
    return env


def _run(command: list[str], database_url: str, *, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=_env(database_url), capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}",
            pytrace=False,
        )
    return result


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", *args], database_url)


def _psql(database_url: str, sql: str) -> str:
    return _run(
        ["psql", f"--dbname={database_url}", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
         "--set=ON_ERROR_STOP=1", "--command", sql],
        database_url,
    ).stdout


def _row_counts(database_url: str) -> dict[str, int]:
    """Rows per table of the public schema (every app's tables, Django's own included)."""
    tables = _psql(
        database_url, "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    ).split()
    query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.\"{t}\"" for t in tables)
    rows = (line.split("|") for line in _psql(database_url, query).splitlines() if line)
    return {table: int(count) for table, count in rows}


def _analyze(database_url: str) -> tuple[dict, str]:
    """The analysis document ``analyze --json`` prints, and its progress log."""
    result = _manage(database_url, "analyze", SLUG, "--json")
    return json.loads(result.stdout), result.stderr


def _comparable(document: dict, *, keep_method: bool = True) -> dict:
    """
    The document without what differs from run to run by design: the run's id
    and time, and with ``keep_method=False`` how the themes were reached (a
    first run finds them; a re-run on the same answers grows the served run's).
    """
    document = copy.deepcopy(document)
    document["run"].pop("id")
    document["run"].pop("generated_at")
    if not keep_method:
        document["engine"]["themes"].pop("method")
    return document


def _differences(a, b, path: str = "", limit: int = 20) -> list[str]:
    """Where two JSON documents differ (the first ``limit`` places), for a readable failure."""
    found: list[str] = []

    def walk(x, y, at: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y), key=str):
                if key not in x or key not in y:
                    found.append(f"{at}/{key}: only in {'first' if key in x else 'second'}")
                else:
                    walk(x[key], y[key], f"{at}/{key}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for index, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{at}[{index}]")
        elif x != y:
            found.append(f"{at}: {json.dumps(x)[:120]} != {json.dumps(y)[:120]}")

    walk(a, b, path)
    return found


def _assert_same_analysis(first: dict, second: dict, *, keep_method: bool = True) -> None:
    first, second = _comparable(first, keep_method=keep_method), _comparable(second, keep_method=keep_method)
    assert first == second, "analysis documents differ:\n" + "\n".join(_differences(first, second))


def _force_recompute(database_url: str) -> None:
    # ``analyze`` skips inputs whose fingerprint equals the served run's and
    # prints that run's stored result. Forgetting the fingerprints makes it
    # compute again from the answers, themes and embeddings in this database.
    _psql(database_url, "UPDATE analysis_analysisrun SET fingerprint = '' WHERE status = 'done'")


@dataclass
class Restored:
    source_url: str
    restored_url: str
    dump: Path
    backup_output: str
    restore_output: str
    # The source's first analysis, computed while seeding it.
    analysis: dict
    # Rows per table: the source's when it was dumped, the copy's just after the restore.
    source_counts: dict[str, int]
    restored_counts: dict[str, int]


@pytest.fixture(scope="module")
def restored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restored]:
    """A seeded and analysed source database, its dump, and the dump restored into a new database."""
    server_url = _server_url()
    suffix = secrets.token_hex(4)
    source_url = _database_url(server_url, f"gs_backup_src_{suffix}")
    restored_url = _database_url(server_url, f"gs_backup_dst_{suffix}")
    maintenance_url = _database_url(server_url, "postgres")
    created: list[str] = []
    try:
        for url in (source_url, restored_url):
            name = urlsplit(url).path.lstrip("/")
            _run(["createdb", f"--maintenance-db={maintenance_url}", name], maintenance_url)
            created.append(name)

        _manage(source_url, "migrate", "--noinput")
        _manage(source_url, "seed_demo")
        analysis, _ = _analyze(source_url)

        dump = tmp_path_factory.mktemp("backup") / "gapsurvey.dump"
        backup = _run([str(REPO_ROOT / "scripts" / "backup"), str(dump)], source_url)
        source_counts = _row_counts(source_url)
        restore = _run([str(REPO_ROOT / "scripts" / "restore"), str(dump)], restored_url)
        yield Restored(
            source_url=source_url,
            restored_url=restored_url,
            dump=dump,
            backup_output=backup.stdout,
            restore_output=restore.stdout,
            analysis=analysis,
            source_counts=source_counts,
            restored_counts=_row_counts(restored_url),
        )
    finally:
        for name in created:
            # --force: a command killed by a timeout may have left a connection behind.
            subprocess.run(
                ["dropdb", f"--maintenance-db={maintenance_url}", "--if-exists", "--force", name],
                env=_env(maintenance_url), capture_output=True, timeout=COMMAND_TIMEOUT,
            )


class BackupRestoreTests:
    def test_backup_writes_a_private_custom_format_dump(self, restored: Restored):
        assert restored.dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format, what pg_restore reads
        assert stat.S_IMODE(restored.dump.stat().st_mode) == 0o600
        assert not restored.dump.with_name(restored.dump.name + ".partial").exists()
        assert f"Backed up to {restored.dump} ({restored.dump.stat().st_size} bytes)" in restored.backup_output

    def test_restore_copies_every_row_of_every_table(self, restored: Restored):
        source, copy_ = restored.source_counts, restored.restored_counts

        assert copy_ == source
        # Not an empty comparison: the demo's answers and its analysis are there.
        assert source["surveys_answeritem"] > 1000
        assert source["surveys_respondent"] > 100
        assert source["analysis_analysisrun"] >= 1
        assert source["analysis_theme"] > 0
        assert {t for t in source if t.startswith(("surveys_", "analysis_"))} >= {
            "surveys_engagement", "surveys_wave", "surveys_rating", "analysis_runthemeitems"
        }
        assert "Restored" in restored.restore_output
        assert "surveys.AnswerItem" in restored.restore_output  # the summary of row counts

    def test_restored_database_serves_the_same_analysis(self, restored: Restored):
        source, source_log = _analyze(restored.source_url)
        copy_, copy_log = _analyze(restored.restored_url)

        # Unchanged inputs: both print the stored run, the copy's read back from the dump.
        assert "unchanged" in source_log and "unchanged" in copy_log
        _assert_same_analysis(copy_, restored.analysis)
        _assert_same_analysis(copy_, source)

    def test_restored_database_recomputes_the_same_analysis(self, restored: Restored):
        _force_recompute(restored.source_url)
        _force_recompute(restored.restored_url)

        source, source_log = _analyze(restored.source_url)
        copy_, copy_log = _analyze(restored.restored_url)

        assert "unchanged" not in source_log and "unchanged" not in copy_log
        # Same answers, theme identities and curation in both: the same themes, gaps and ratings,
        # and the same as the first analysis the source computed before its backup.
        _assert_same_analysis(copy_, source)
        # The re-runs grew the served run's themes; the first run found them: nothing else may differ.
        assert copy_["engine"]["themes"]["method"] == "grown"
        _assert_same_analysis(copy_, restored.analysis, keep_method=False)

    def test_restore_refuses_a_database_that_has_tables_unless_forced(self, restored: Restored):
        script = str(REPO_ROOT / "scripts" / "restore")
        before = _row_counts(restored.restored_url)

        refused = _run([script, str(restored.dump)], restored.restored_url, check=False)

        assert refused.returncode != 0
        assert "already has" in refused.stderr and "--force" in refused.stderr
        assert _row_counts(restored.restored_url) == before

        forced = _run([script, "--force", str(restored.dump)], restored.restored_url)

        assert "Replacing the contents" in forced.stdout
        assert _row_counts(restored.restored_url) == restored.source_counts


class BackupScriptInputTests:
    """Refusals that need no database server."""

    @pytest.mark.parametrize("script", ["backup", "restore"])
    def test_refuses_a_database_url_that_is_not_postgres(self, script: str, tmp_path: Path):
        dump = tmp_path / "x.dump"
        dump.write_bytes(b"PGDMP")
        args = [str(dump)] if script == "restore" else [str(tmp_path / "out.dump")]

        result = _run([str(REPO_ROOT / "scripts" / script), *args], "sqlite:///var/gapsurvey.sqlite3", check=False)

        assert result.returncode == 1
        assert "not a postgres:// URL" in result.stderr
        assert not (tmp_path / "out.dump").exists()

    def test_restore_needs_a_readable_file(self, tmp_path: Path):
        result = _run(
            [str(REPO_ROOT / "scripts" / "restore"), str(tmp_path / "missing.dump")],
            "postgres://nobody@127.0.0.1:1/none",
            check=False,
        )

        assert result.returncode == 1
        assert "cannot read" in result.stderr
