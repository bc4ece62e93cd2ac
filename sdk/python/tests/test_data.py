"""Datastores, datasets and dataset inputs of runs, against the fake server."""

import json
import os

import pytest

from conftest import RUN_ID, RUN_PATH, WS, problem, run_view
from trainyard import (DataPath, Dataset, DatasetConsumptionConfig, Datastore, Experiment,
                       FileDataset, Run, ScriptRunConfig, TrainyardError)
from trainyard import _transfer

DEFAULT_VIEW = {"name": "default", "kind": "builtin", "url": "builtin", "is_default": True,
                "created_at": None}
SHARE_VIEW = {"name": "share", "kind": "file", "url": "file:///srv/data", "is_default": False,
              "created_at": "2026-11-23T12:00:00Z"}
MNIST_VIEW = {"id": "d2", "name": "mnist", "version": 2, "description": "digits",
              "tags": {"src": "lecun"}, "datastore": "default", "paths": ["mnist/*.gz"],
              "file_count": 2, "total_bytes": 30, "created_at": "2026-11-23T12:00:00Z"}
DS = f"{WS}/datastores/default"


@pytest.fixture
def default(fake, workspace):
    fake.route("GET", DS, (200, DEFAULT_VIEW))
    return Datastore(workspace)


def test_datastores_get_list_register(fake, workspace):
    fake.route("GET", f"{WS}/datastores", (200, {"items": [DEFAULT_VIEW, SHARE_VIEW]}))
    fake.route("GET", f"{WS}/datastores/share", (200, SHARE_VIEW))
    fake.route("POST", f"{WS}/datastores", (201, SHARE_VIEW))
    stores = workspace.datastores
    assert sorted(stores) == ["default", "share"] and stores["share"].datastore_type == "file"
    default = workspace.get_default_datastore()
    assert default.name == "default" and default.is_default and default.kind == "builtin"
    share = Datastore.get(workspace, "share")
    assert share.url == "file:///srv/data" and not share.is_default
    assert share == stores["share"] and share != default
    registered = Datastore.register(workspace, "share", "/srv/data")
    assert fake.received("POST", f"{WS}/datastores")[0].json() == {
        "name": "share", "url": "file:///srv/data"}
    Datastore.register(workspace, "share", "file:///srv/data")
    assert fake.received("POST", f"{WS}/datastores")[1].json()["url"] == "file:///srv/data"
    assert registered.name == "share"
    with pytest.raises(ValueError, match="absolute"):
        Datastore.register(workspace, "x", "relative/dir")
    fake.route("GET", f"{WS}/datastores/nope", problem(404, "not_found", "no datastore nope"))
    with pytest.raises(TrainyardError) as raised:
        Datastore.get(workspace, "nope")
    assert raised.value.code == "not_found"


def _tree(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_upload_streams_each_file_and_skips_existing(fake, default, tmp_path, capsys,
                                                     monkeypatch):
    big = os.urandom(3 * _transfer.CHUNK + 5)
    _tree(tmp_path, {"a.txt": b"alpha", "sub/b.bin": big, "sub/c.txt": b"c", "old.txt": b"o"})
    fake.route("GET", f"{DS}/files", (200, {"items": [
        {"path": "mnist/old.txt", "size": 1, "modified": "t"}]}))
    stored = {}

    def put(request):
        path = request.query["path"][0]
        if path == "mnist/sub/c.txt":  # created meanwhile by someone else
            return problem(409, "already_exists", "mnist/sub/c.txt exists")
        stored[path] = request
        return 201, {"path": path, "size": len(request.body)}

    fake.route("PUT", f"{DS}/files", put)
    reads = []
    original = _transfer.CountingReader.read

    def counting_read(self, size=-1):
        block = original(self, size)
        reads.append(len(block))
        return block

    monkeypatch.setattr(_transfer.CountingReader, "read", counting_read)
    result = default.upload(str(tmp_path), target_path="mnist")
    assert result == DataPath(default, "mnist") and result.datastore_name == "default"
    assert sorted(stored) == ["mnist/a.txt", "mnist/sub/b.bin"]
    request = stored["mnist/sub/b.bin"]
    assert request.body == big
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["content-length"] == str(len(big))
    assert request.query["overwrite"] == ["false"]
    assert fake.received("GET", f"{DS}/files")[0].query == {"prefix": ["mnist"]}
    assert max(reads) <= _transfer.CHUNK and sum(reads) == 5 + len(big) + 1  # in blocks
    out = capsys.readouterr().out
    assert "Uploading 4 file(s)" in out
    assert "Uploaded mnist/a.txt (1/4, 5 B)" in out
    assert "Skipped mnist/old.txt (2/4, 1 B): exists" in out
    assert "Skipped mnist/sub/c.txt (4/4, 1 B): exists" in out
    assert out.rstrip().endswith("[" + "#" * 20 + "] 100%  3.0 MB / 3.0 MB")
    assert "Uploaded mnist/a.txt (1/4, 5 B)  [--------------------]   0%  5 B / 3.0 MB" in out


def test_upload_skips_a_file_refused_by_a_broken_connection(fake, default, tmp_path, capsys):
    _tree(tmp_path, {"a.txt": b"alpha", "b.txt": b"beta"})
    listings = iter([{"items": []}, {"items": [{"path": "a.txt", "size": 5, "modified": "t"}]},
                     {"items": []}])
    fake.route("GET", f"{DS}/files", lambda r: (200, next(listings)))
    fake.route("PUT", f"{DS}/files", "drop")  # as when a 409 comes before the body is read
    with pytest.raises(TrainyardError) as raised:
        default.upload(str(tmp_path))  # a.txt exists after all: skipped; b.txt does not
    assert raised.value.status is None and raised.value.code == "connection_error"
    out = capsys.readouterr().out
    assert "Skipped a.txt (1/2, 5 B): exists" in out and "b.txt" not in out
    assert [r.query["path"][0] for r in fake.received("PUT", f"{DS}/files")] == ["a.txt",
                                                                                  "b.txt"]


def test_upload_overwrite_and_quiet(fake, default, tmp_path, capsys):
    _tree(tmp_path, {"a.txt": b"alpha"})
    fake.route("PUT", f"{DS}/files", (201, {"path": "a.txt", "size": 5}))
    default.upload(str(tmp_path), overwrite=True, show_progress=False)
    put = fake.received("PUT", f"{DS}/files")[0]
    assert put.query == {"path": ["a.txt"], "overwrite": ["true"]}
    assert not fake.received("GET", f"{DS}/files")  # nothing to skip: no listing
    assert capsys.readouterr().out == ""
    fake.route("PUT", f"{DS}/files", problem(422, "invalid_field", "bad path", "path"))
    with pytest.raises(TrainyardError):
        default.upload(str(tmp_path), overwrite=True, show_progress=False)
    with pytest.raises(NotADirectoryError):
        default.upload(str(tmp_path / "a.txt"))


def test_upload_files_relative_to_their_common_folder(fake, default, tmp_path):
    _tree(tmp_path, {"data/x/1.csv": b"1", "data/y/2.csv": b"2", "other/3.csv": b"3"})
    fake.route("GET", f"{DS}/files", (200, {"items": []}))
    fake.route("PUT", f"{DS}/files", lambda r: (201, {"path": r.query["path"][0], "size": 1}))
    default.upload_files([str(tmp_path / "data/x/1.csv"), str(tmp_path / "data/y/2.csv")],
                         target_path="/csv/", show_progress=False)
    default.upload_files([str(tmp_path / "data/x/1.csv")], relative_root=str(tmp_path),
                         show_progress=False)
    paths = [r.query["path"][0] for r in fake.received("PUT", f"{DS}/files")]
    assert paths == ["csv/x/1.csv", "csv/y/2.csv", "data/x/1.csv"]
    with pytest.raises(ValueError, match="relative_root"):
        default.upload_files([str(tmp_path / "other/3.csv")],
                             relative_root=str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError):
        default.upload_files([str(tmp_path / "missing.csv")])


def test_list_and_download(fake, default, tmp_path, capsys):
    files = {"mnist/a.gz": b"a" * 10, "mnist/sub/b.gz": os.urandom(_transfer.CHUNK * 2 + 1),
             "mnist/kept.gz": b"new"}
    fake.route("GET", f"{DS}/files", (200, {"items": [
        {"path": p, "size": len(d), "modified": "t"} for p, d in files.items()] + [
        {"path": "../evil", "size": 1, "modified": "t"}]}))
    fake.route("GET", f"{DS}/files/download", lambda r: (200, files[r.query["path"][0]]))
    assert [f["path"] for f in default.list("mnist/")][:3] == list(files)
    assert fake.received("GET", f"{DS}/files")[0].query == {"prefix": ["mnist"]}
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "kept.gz").write_bytes(b"old")
    count = default.download(str(tmp_path), prefix="mnist")
    assert count == 2
    assert (tmp_path / "mnist/sub/b.gz").read_bytes() == files["mnist/sub/b.gz"]
    assert (tmp_path / "mnist/kept.gz").read_bytes() == b"old"
    assert not (tmp_path.parent / "evil").exists()
    assert not list(tmp_path.rglob("*.part"))
    out = capsys.readouterr().out
    assert "Downloaded mnist/a.gz (1/3, 10 B)" in out and "Skipped mnist/kept.gz" in out
    assert default.download(str(tmp_path), prefix="mnist", overwrite=True,
                            show_progress=False) == 3
    assert (tmp_path / "mnist/kept.gz").read_bytes() == b"new"


def test_from_files_forms(default):
    ds = Dataset.File.from_files(path=[(default, "mnist/*.gz"),
                                       (default, ["labels.csv", "/train/"]),
                                       DataPath(default, "images/**/*.png")])
    assert isinstance(ds, FileDataset) and ds.name is None and ds.version is None
    assert ds.datastore == "default"
    assert ds.paths == ["mnist/*.gz", "labels.csv", "train/", "images/**/*.png"]
    web = Dataset.File.from_files("https://example.org/mnist.gz")
    assert web.urls == ["https://example.org/mnist.gz"] and web.datastore is None
    assert Dataset.File.from_files(("share", "x/")).datastore == "share"
    with pytest.raises(ValueError, match="one datastore"):
        Dataset.File.from_files([(default, "a"), ("share", "b")])
    with pytest.raises(ValueError, match="URL"):
        Dataset.File.from_files("mnist/*.gz")
    with pytest.raises(TypeError):
        Dataset.File.from_files([42])
    with pytest.raises(ValueError, match="register"):
        ds.to_path()
    with pytest.raises(NotImplementedError):
        Dataset.Tabular.from_delimited_files("x")


def test_register_get_and_files(fake, workspace, default):
    fake.sequence("POST", f"{WS}/datasets", [
        (201, MNIST_VIEW), problem(409, "already_exists", "dataset mnist exists", "name"),
        (201, dict(MNIST_VIEW, name="web", paths=["x/", "https://example.org/m.gz"]))])
    ds = Dataset.File.from_files([(default, "mnist/*.gz")])
    registered = ds.register(workspace, "mnist", description="digits", tags={"src": "lecun"},
                             create_new_version=True)
    assert fake.received("POST", f"{WS}/datasets")[0].json() == {
        "name": "mnist", "datastore": "default", "paths": ["mnist/*.gz"], "urls": [],
        "description": "digits", "tags": {"src": "lecun"}, "create_new_version": True}
    assert (registered.name, registered.version, registered.id) == ("mnist", 2, "d2")
    assert registered.tags == {"src": "lecun"} and registered.file_count == 2
    with pytest.raises(TrainyardError) as raised:
        ds.register(workspace, "mnist")
    assert raised.value.code == "already_exists"
    assert fake.received("POST", f"{WS}/datasets")[1].json()["create_new_version"] is False
    web = Dataset.File.from_files("https://example.org/m.gz").register(workspace, "web")
    assert "datastore" not in fake.received("POST", f"{WS}/datasets")[2].json()
    assert (web.paths, web.urls) == (["x/"], ["https://example.org/m.gz"])  # split back

    fake.route("GET", f"{WS}/datasets/mnist", (200, MNIST_VIEW))
    fake.route("GET", f"{WS}/datasets", (200, {"items": [MNIST_VIEW]}))
    fake.route("GET", f"{WS}/datasets/mnist/files", (200, {"items": [
        {"path": "mnist/a.gz", "size": 10, "sha256": "x"},
        {"path": "mnist/b.gz", "size": 20, "sha256": "y"}]}))
    latest = Dataset.get_by_name(workspace, "mnist")
    assert latest == registered
    Dataset.get_by_name(workspace, "mnist", version=1)
    queries = [r.query for r in fake.received("GET", f"{WS}/datasets/mnist")]
    assert queries == [{}, {"version": ["1"]}]
    assert latest.to_path() == ["/mnist/a.gz", "/mnist/b.gz"]
    assert fake.received("GET", f"{WS}/datasets/mnist/files")[0].query == {"version": ["2"]}
    assert list(workspace.datasets) == ["mnist"]


@pytest.fixture
def mnist(workspace):
    return FileDataset._from_view(workspace, MNIST_VIEW)


def test_consumption_configs(mnist):
    named = mnist.as_named_input("train_data")
    assert isinstance(named, DatasetConsumptionConfig) and named.mode == "mount"
    download = named.as_download("/data/mnist")
    assert download._input() == {"name": "train_data", "dataset": "mnist", "version": 2,
                                 "mode": "download", "path": "/data/mnist"}
    assert named.as_mount()._input() == {"name": "train_data", "dataset": "mnist",
                                         "version": 2, "mode": "mount"}
    assert named.placeholder == "${{inputs.train_data}}"
    assert mnist.as_mount().name == "mnist" and mnist.as_download().mode == "download"
    with pytest.raises(ValueError, match="input name"):
        mnist.as_named_input("a b")
    with pytest.raises(ValueError, match="register"):
        Dataset.File.from_files(("default", "x")).as_mount()
    unregistered = DatasetConsumptionConfig("x", Dataset.File.from_files(("default", "x")))
    with pytest.raises(ValueError, match="register"):
        unregistered._input()


@pytest.fixture
def experiment(fake, workspace):
    fake.route("PUT", f"{WS}/experiments/exp", (201, {"id": "e", "name": "exp", "tags": {}}))
    fake.route("POST", f"{WS}/snapshots", (201, {"digest": "ab" * 32}))
    fake.route("POST", f"{WS}/runs", (201, run_view()))
    return Experiment(workspace, "exp")


def test_inputs_in_arguments_become_placeholders(fake, experiment, mnist, tmp_path):
    (tmp_path / "train.py").write_text("")
    config = ScriptRunConfig(str(tmp_path), "train.py", arguments=[
        "--data-folder", mnist.as_named_input("mnist").as_mount(),
        "--labels", mnist.as_named_input("labels").as_download("/tmp/labels"),
        "--again", mnist.as_named_input("mnist").as_mount()],
        inputs=[{"name": "extra", "dataset": "other", "mode": "download"}])
    experiment.submit(config)
    body = fake.received("POST", f"{WS}/runs")[0].json()
    assert body["arguments"] == ["--data-folder", "${{inputs.mnist}}", "--labels",
                                 "${{inputs.labels}}", "--again", "${{inputs.mnist}}"]
    assert body["inputs"] == [
        {"name": "extra", "dataset": "other", "mode": "download"},
        {"name": "mnist", "dataset": "mnist", "version": 2, "mode": "mount"},
        {"name": "labels", "dataset": "mnist", "version": 2, "mode": "download",
         "path": "/tmp/labels"}]


def test_inputs_given_directly_and_in_commands(fake, experiment, mnist):
    config = ScriptRunConfig(None, command=["ls", mnist.as_named_input("m").as_mount()],
                             inputs=[mnist.as_named_input("m").as_mount()])
    experiment.submit(config)
    body = fake.received("POST", f"{WS}/runs")[0].json()
    assert body["command"] == ["ls", "${{inputs.m}}"]
    assert body["inputs"] == [{"name": "m", "dataset": "mnist", "version": 2, "mode": "mount"}]


def test_bad_inputs_are_refused_before_uploading(fake, experiment, mnist, tmp_path):
    (tmp_path / "train.py").write_text("")
    clash = ScriptRunConfig(str(tmp_path), "train.py", arguments=[
        mnist.as_named_input("m").as_mount(), mnist.as_named_input("m").as_download()])
    with pytest.raises(ValueError, match="two different inputs"):
        experiment.submit(clash)
    unregistered = Dataset.File.from_files(("default", "x"))
    with pytest.raises(ValueError, match="register"):
        experiment.submit(ScriptRunConfig(str(tmp_path), "train.py", arguments=[
            DatasetConsumptionConfig("x", unregistered)]))
    with pytest.raises(TypeError, match="as_named_input"):
        experiment.submit(ScriptRunConfig(str(tmp_path), "train.py", arguments=[mnist]))
    with pytest.raises(TypeError):
        experiment.submit(ScriptRunConfig(str(tmp_path), "train.py", inputs=["mnist"]))
    assert not fake.received("POST", f"{WS}/snapshots")
    assert not fake.received("POST", f"{WS}/runs")


def test_run_input_datasets(fake, workspace):
    inputs = [{"name": "mnist", "dataset": "mnist", "version": 2, "mode": "mount",
               "path": "/mnt/inputs/mnist"}]
    fake.route("GET", RUN_PATH, (200, run_view(inputs=inputs)))
    run = Run(None, RUN_ID, _workspace=workspace)
    assert run.input_datasets == {"mnist": "/mnt/inputs/mnist"}
    assert run.get_details()["inputs"] == inputs
    assert json.loads(json.dumps(run.get_details()))["inputs"][0]["version"] == 2
    fake.route("GET", RUN_PATH, (200, run_view(spec={"script": "t.py", "inputs": inputs})))
    assert Run(None, RUN_ID, _workspace=workspace).input_datasets == {
        "mnist": "/mnt/inputs/mnist"}  # read from the spec when the view lacks "inputs"


def test_progress_bar_text():
    progress = _transfer.Progress("Uploading", 2, 4096, enabled=False)
    progress.advance(1024)
    assert progress.bar() == "[" + "#" * 5 + "-" * 15 + "]  25%  1.0 KB / 4.0 KB"
    progress.file_done("a", 1024)
    progress.advance(100)  # part of a file that is then skipped
    progress.file_done("b", 3072, skipped="exists")
    assert progress.bar().endswith("100%  4.0 KB / 4.0 KB")
    assert _transfer.human_size(0) == "0 B" and _transfer.human_size(5 << 30) == "5.0 GB"
