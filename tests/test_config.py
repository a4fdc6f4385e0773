"""Configuration parsing: clear errors that name the variable."""

from __future__ import annotations

import pytest

from backoffice.config import ConfigError, Env, parse_database_url, read_dotenv


def test_it_names_the_variable_of_a_malformed_number():
    with pytest.raises(
        ConfigError, match=r"^STREAM_BATCH_SIZE must be a whole number, got 'lots'$"
    ):
        Env({"STREAM_BATCH_SIZE": "lots"}).int("STREAM_BATCH_SIZE", 10)


def test_it_refuses_a_value_below_the_minimum():
    with pytest.raises(ConfigError, match=r"^KAFKA_PARTITIONS must be at least 1, got 0$"):
        Env({"KAFKA_PARTITIONS": "0"}).int("KAFKA_PARTITIONS", 4, minimum=1)


def test_it_reads_booleans_strictly():
    assert Env({"X": "yes"}).bool("X", False) is True
    with pytest.raises(ConfigError, match=r"^X must be true or false, got 'maybe'$"):
        Env({"X": "maybe"}).bool("X", False)


def test_defaults_apply_when_unset_or_empty():
    assert Env({"A": ""}).int("A", 7) == 7
    assert Env({}).list("L", "a, b,,c") == ["a", "b", "c"]


def test_dotenv_values_are_overridden_by_the_environment(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nexport A=1\nB='two words'\n")
    env = Env({"A": "9"}, dotenv=dotenv)
    assert env.int("A", 0) == 9
    assert env.str("B", "") == "two words"


def test_a_malformed_dotenv_line_is_reported_with_its_number(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"^\.env line 2: expected NAME=value"):
        read_dotenv(dotenv)


def test_database_url_is_parsed_and_a_wrong_scheme_is_refused():
    url = parse_database_url("postgresql://u:p%40ss@db.local:6543/books")
    assert (url.host, url.port, url.name, url.user, url.password) == (
        "db.local",
        6543,
        "books",
        "u",
        "p@ss",
    )
    with pytest.raises(ConfigError, match=r"^DATABASE_URL must look like postgresql://"):
        parse_database_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match=r"names no database"):
        parse_database_url("postgresql://u@h:5432/")
