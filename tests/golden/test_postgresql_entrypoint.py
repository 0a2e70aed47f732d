"""The golden PostgreSQL image's entry point: the settings it reads as the upstream image does, and what it refuses."""

from __future__ import annotations

import importlib.util
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines import golden

SCRIPT = golden.HERE / "python-runtime" / "postgresql-entrypoint.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pg_entrypoint", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ep = _load()


def test_defaults_follow_the_upstream_image(tmp_path: Path) -> None:
    s = ep.settings({"PGDATA": str(tmp_path / "data"), "POSTGRES_PASSWORD": "pw"})
    assert (s.user, s.database, s.password) == ("postgres", "postgres", "pw")
    s = ep.settings({"PGDATA": str(tmp_path / "data"), "POSTGRES_PASSWORD": "pw", "POSTGRES_USER": "app"})
    assert (s.user, s.database) == ("app", "app")


def test_values_come_from_files_and_both_forms_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-a-secret\n")
    (tmp_path / "db").write_text("documents")
    env = {
        "PGDATA": str(tmp_path / "d"),
        "POSTGRES_PASSWORD_FILE": str(tmp_path / "pw"),
        "POSTGRES_DB_FILE": str(tmp_path / "db"),
    }
    s = ep.settings(env)
    assert (s.password, s.database) == ("from-a-secret", "documents")
    with pytest.raises(ep.Refused, match="both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set"):
        ep.settings({**env, "POSTGRES_PASSWORD": "x"})
    with pytest.raises(ep.Refused, match=r"POSTGRES_PASSWORD_FILE=.*missing: cannot be read"):
        ep.settings({**env, "POSTGRES_PASSWORD_FILE": str(tmp_path / "missing")})


def test_a_first_start_needs_a_password_and_a_later_one_does_not(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(ep.Refused, match="is empty and no password is set: set POSTGRES_PASSWORD_FILE"):
        ep.settings({"PGDATA": str(data)})
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    assert ep.settings({"PGDATA": str(data)}).password is None


def test_names_postgresql_cannot_hold_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ep.Refused, match=r"POSTGRES_DB: .* is not a PostgreSQL name"):
        ep.settings({"PGDATA": str(tmp_path), "POSTGRES_PASSWORD": "p", "POSTGRES_DB": "x" * 64})


def test_only_sql_files_run_on_first_start(tmp_path: Path) -> None:
    (tmp_path / "02-data.sql").write_text("INSERT INTO t VALUES (1);")
    (tmp_path / "01-schema.sql").write_text("CREATE TABLE t (id int);\n")
    assert [p.name for p in ep.init_scripts(tmp_path)] == ["01-schema.sql", "02-data.sql"]
    assert ep.init_scripts(tmp_path / "absent") == []
    (tmp_path / "03-seed.sh").write_text("psql -c 'select 1'\n")
    with pytest.raises(ep.Refused, match=r"03-seed.sh: this image runs only \*.sql files"):
        ep.init_scripts(tmp_path)


def test_single_user_input_sets_the_user_and_the_database_then_the_scripts_run_as_it(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("CREATE TABLE t (id int);\n\n\n")
    s = ep.Settings(tmp_path, 'we"ird', "docs", "it's")
    assert ep.single_user_input(s) == (
        "SET log_min_error_statement = panic;\n\n"
        "CREATE ROLE \"we\"\"ird\" SUPERUSER LOGIN PASSWORD 'it''s';\n\n"
        'CREATE DATABASE "docs" OWNER "we""ird";\n\n'
    )
    assert ep.scripts_input(s, [tmp_path / "a.sql"]) == 'SET ROLE "we""ird";\n\nCREATE TABLE t (id int);\n\n'
    text = ep.single_user_input(ep.Settings(tmp_path, "postgres", "postgres", "p"))
    assert text.endswith("ALTER ROLE postgres PASSWORD 'p';\n\n") and "DATABASE" not in text


def test_the_template_goes_only_into_an_empty_data_directory(tmp_path: Path) -> None:
    template, data = tmp_path / "template.tar.gz", tmp_path / "data"
    with pytest.raises(ep.Refused, match=r"template\.tar\.gz is missing: the image is damaged"):
        ep.copy_template(template, data)
    cluster = tmp_path / "cluster"
    (cluster / "base").mkdir(parents=True)
    (cluster / "PG_VERSION").write_text("15\n")
    with tarfile.open(template, "w:gz") as tar:
        tar.add(cluster, arcname=".")
    data.mkdir()
    (data / "lost+found").mkdir()
    with pytest.raises(ep.Refused, match="holds files but no cluster"):
        ep.copy_template(template, data)
    (data / "lost+found").rmdir()
    ep.copy_template(template, data)
    assert (data / "PG_VERSION").read_text() == "15\n" and (data / "base").is_dir()
    assert data.stat().st_mode & 0o777 == 0o700
    with tarfile.open(template, "w:gz") as tar:
        tar.add(cluster / "base", arcname="base")
    with pytest.raises(ep.Refused, match="holds no cluster"):
        ep.copy_template(template, tmp_path / "other")


@given(st.text(min_size=1, max_size=40).filter(lambda t: "\0" not in t))
def test_quote_ident_round_trips_any_name(name: str) -> None:
    quoted = ep.quote_ident(name)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert quoted[1:-1].replace('""', '"') == name and '"' not in quoted[1:-1].replace('""', "")
