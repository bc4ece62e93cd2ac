"""Workspace.from_config: the config file, the environment, and their precedence."""

import json
import os

import pytest

from trainyard import ConfigError, Workspace
from trainyard.workspace import DEFAULT_URL


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("TRAINYARD_URL", "TRAINYARD_WORKSPACE", "TRAINYARD_TOKEN", "TRAINYARD_API_URL"):
        monkeypatch.delenv(name, raising=False)


def write_config(folder, **content):
    os.makedirs(os.path.join(folder, ".trainyard"), exist_ok=True)
    path = os.path.join(folder, ".trainyard", "config.json")
    with open(path, "w") as handle:
        json.dump(content, handle)
    return path


def test_found_in_a_parent_folder(tmp_path, monkeypatch):
    write_config(str(tmp_path), url="http://h:1/", workspace="vision", token="tyd_a")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    ws = Workspace.from_config()
    assert (ws.url, ws.name, ws.token) == ("http://h:1", "vision", "tyd_a")


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    write_config(str(tmp_path), url="http://file:1", workspace="file-ws", token="tyd_file")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINYARD_WORKSPACE", "env-ws")
    monkeypatch.setenv("TRAINYARD_TOKEN", "tyd_env")
    ws = Workspace.from_config()
    assert (ws.url, ws.name, ws.token) == ("http://file:1", "env-ws", "tyd_env")
    monkeypatch.setenv("TRAINYARD_URL", "http://env:2")
    assert Workspace.from_config().url == "http://env:2"


def test_environment_alone_and_default_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINYARD_WORKSPACE", "w")
    monkeypatch.setenv("TRAINYARD_TOKEN", "t")
    assert Workspace.from_config().url == DEFAULT_URL


def test_inside_a_run_the_api_url_is_the_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINYARD_WORKSPACE", "w")
    monkeypatch.setenv("TRAINYARD_TOKEN", "t")
    monkeypatch.setenv("TRAINYARD_API_URL", "http://10.0.0.1:8420")
    assert Workspace.from_config().url == "http://10.0.0.1:8420"
    monkeypatch.setenv("TRAINYARD_URL", "http://explicit:1")
    assert Workspace.from_config().url == "http://explicit:1"


def test_path_may_name_the_file_or_a_start_folder(tmp_path, monkeypatch):
    path = write_config(str(tmp_path / "proj"), workspace="p", token="t", url="http://p:3")
    monkeypatch.chdir(tmp_path)
    assert Workspace.from_config(path=path).name == "p"
    (tmp_path / "proj" / "nb").mkdir()
    assert Workspace.from_config(path=str(tmp_path / "proj" / "nb")).url == "http://p:3"


def test_missing_token_names_the_ways_to_give_one(tmp_path, monkeypatch):
    write_config(str(tmp_path), workspace="w")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="TRAINYARD_TOKEN"):
        Workspace.from_config()


def test_nothing_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no workspace"):
        Workspace.from_config()


def test_bad_json(tmp_path, monkeypatch):
    os.makedirs(tmp_path / ".trainyard")
    (tmp_path / ".trainyard" / "config.json").write_text("{nope")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="JSON"):
        Workspace.from_config()


def test_write_config_round_trips(tmp_path, monkeypatch):
    ws = Workspace("http://h:9", "vision", "tyd_x")
    path = ws.write_config(str(tmp_path))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    monkeypatch.chdir(tmp_path)
    again = Workspace.from_config()
    assert again == ws and again.token == "tyd_x"
    assert "tyd_x" not in repr(again)
