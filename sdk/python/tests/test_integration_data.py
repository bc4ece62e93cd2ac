"""Datastores, datasets, dataset inputs and the model registry against a live server.

Needs ``TRAINYARD_TEST_URL`` and ``TRAINYARD_TEST_TOKEN`` (a server
administrator token), like ``test_integration.py``; the tests that submit
runs also need the Docker executor and the base images. The ``file://``
datastore test registers a folder of this machine, so it assumes the server
runs on the same machine (skipped otherwise with ``TRAINYARD_TEST_REMOTE=1``).
"""

import hashlib
import os
import shutil
import tempfile
import uuid

import pytest

from trainyard import (DataPath, Dataset, Datastore, Environment, Experiment, Model,
                       ResourceConfiguration, ScriptRunConfig, TrainyardError, Workspace)

URL = os.environ.get("TRAINYARD_TEST_URL")
TOKEN = os.environ.get("TRAINYARD_TEST_TOKEN")
RUN_TIMEOUT = float(os.environ.get("TRAINYARD_TEST_RUN_TIMEOUT", "300"))

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (URL and TOKEN), reason=(
        "integration tests need a live server: set TRAINYARD_TEST_URL and "
        "TRAINYARD_TEST_TOKEN (a server administrator token)")),
]


@pytest.fixture(scope="module")
def ws():
    name = f"sdk-data-{uuid.uuid4().hex[:12]}"
    return Workspace.create(name, URL, TOKEN, description="trainyard SDK data tests")


def _tree(root, files):
    for rel, data in files.items():
        path = os.path.join(str(root), *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


FILES = {"a.txt": b"alpha\n", "sub/b.csv": b"1,2\n3,4\n", "sub/deep/c.bin": os.urandom(3 << 20),
         "img/x.png": b"png-x", "img/y/z.png": b"png-z"}


def test_default_datastore_and_listing(ws):
    default = ws.get_default_datastore()
    assert default.name == "default" and default.is_default
    assert default.datastore_type == "builtin"
    assert "default" in ws.datastores
    assert Datastore.get(ws, "default") == default
    with pytest.raises(TrainyardError) as raised:
        Datastore.get(ws, "no-such-store")
    assert raised.value.status == 404


def test_upload_list_download_roundtrip(ws, tmp_path, capsys):
    _tree(tmp_path / "src", FILES)
    store = ws.get_default_datastore()
    target = store.upload(str(tmp_path / "src"), target_path="round", show_progress=True)
    assert target == DataPath(store, "round")
    out = capsys.readouterr().out
    assert "Uploaded round/sub/deep/c.bin" in out and "100%" in out
    listed = {item["path"]: item["size"] for item in store.list("round")}
    assert listed == {f"round/{rel}": len(data) for rel, data in FILES.items()}

    # Without overwrite, files already there are skipped; with it they are replaced.
    _tree(tmp_path / "src", {"a.txt": b"changed\n"})
    store.upload(str(tmp_path / "src"), target_path="round", show_progress=True)
    assert "Skipped round/a.txt" in capsys.readouterr().out
    store.upload_files([str(tmp_path / "src" / "a.txt")], target_path="round", overwrite=True,
                       show_progress=False)
    assert {i["path"]: i["size"] for i in store.list("round")}["round/a.txt"] == 8

    count = store.download(str(tmp_path / "back"), prefix="round", show_progress=False)
    assert count == len(FILES)
    for rel, data in FILES.items():
        expected = b"changed\n" if rel == "a.txt" else data
        with open(tmp_path / "back" / "round" / rel, "rb") as handle:
            assert handle.read() == expected
    assert store.download(str(tmp_path / "back"), prefix="round", show_progress=False) == 0


def test_an_existing_large_file_is_skipped_even_when_the_upload_is_cut(ws, tmp_path, capsys):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(96):
            handle.write(os.urandom(1 << 20))
    store = ws.get_default_datastore()
    store.upload_files([str(big)], target_path="large", show_progress=False)
    real, calls = store.list, []

    def stale_first_listing(prefix=None):  # as if another client uploaded it meanwhile
        calls.append(prefix)
        return [] if len(calls) == 1 else real(prefix)

    store.list = stale_first_listing
    store.upload_files([str(big)], target_path="large", show_progress=True)
    assert "Skipped large/big.bin" in capsys.readouterr().out
    assert {i["path"]: i["size"] for i in real("large")} == {"large/big.bin": 96 << 20}


def test_file_datastore(ws, tmp_path):
    if os.environ.get("TRAINYARD_TEST_REMOTE"):
        pytest.skip("the server runs on another machine")
    folder = tempfile.mkdtemp(prefix="trainyard-sdk-share-")
    os.chmod(folder, 0o777)  # the server may run as another user
    try:
        _check_file_datastore(ws, tmp_path, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_file_datastore(ws, tmp_path, folder):
    _tree(folder, {"given/one.txt": b"one"})
    share = Datastore.register(ws, "share", folder)
    assert share.datastore_type == "file" and share.url == "file://" + folder
    assert "share" in ws.datastores
    assert [i["path"] for i in share.list()] == ["given/one.txt"]
    _tree(tmp_path, {"up.txt": b"up"})
    share.upload_files([str(tmp_path / "up.txt")], target_path="uploaded", show_progress=False)
    with open(os.path.join(folder, "uploaded", "up.txt"), "rb") as handle:
        assert handle.read() == b"up"
    with pytest.raises(TrainyardError) as raised:
        Datastore.register(ws, "share", folder)
    assert raised.value.code == "already_exists"


@pytest.fixture(scope="module")
def mnist(ws):
    """Dataset ``mnist`` version 1: three files under ``ds/`` of the default datastore."""
    with tempfile.TemporaryDirectory() as folder:
        _tree(folder, {"train/a.gz": b"train-a", "train/b.gz": b"train-b",
                       "labels.csv": b"label\n1\n", "skip.txt": b"not in the dataset"})
        ws.get_default_datastore().upload(folder, target_path="ds", overwrite=True,
                                          show_progress=False)
    store = ws.get_default_datastore()
    ds = Dataset.File.from_files(path=[(store, "ds/train/*.gz"), DataPath(store, "ds/labels.csv")])
    return ds.register(ws, "mnist", description="digits", tags={"source": "sdk-test"})


def test_dataset_versions_are_immutable(ws, mnist, tmp_path):
    assert (mnist.name, mnist.version, mnist.file_count) == ("mnist", 1, 3)
    assert mnist.total_bytes == len(b"train-a") + len(b"train-b") + len(b"label\n1\n")
    assert mnist.tags == {"source": "sdk-test"} and mnist.description == "digits"
    assert sorted(mnist.to_path()) == ["/ds/labels.csv", "/ds/train/a.gz", "/ds/train/b.gz"]
    shas = {item["path"]: item["sha256"] for item in mnist.list_files()}
    assert shas["ds/train/a.gz"] == _sha(b"train-a")

    again = Dataset.File.from_files([(ws.get_default_datastore(), "ds/train/")])
    with pytest.raises(TrainyardError) as raised:
        again.register(ws, "mnist")
    assert raised.value.status == 409 and raised.value.code == "already_exists"

    # Change a file on the datastore: version 1 keeps its content, version 2 sees the new one.
    _tree(tmp_path, {"train/a.gz": b"train-a, changed"})
    ws.get_default_datastore().upload(str(tmp_path), target_path="ds", overwrite=True,
                                      show_progress=False)
    second = again.register(ws, "mnist", create_new_version=True)
    assert second.version == 2 and second.file_count == 2
    assert Dataset.get_by_name(ws, "mnist").version == 2
    first = Dataset.get_by_name(ws, "mnist", version=1)
    assert {i["path"]: i["sha256"] for i in first.list_files()} == shas
    assert {i["path"]: i["sha256"] for i in second.list_files()}["ds/train/a.gz"] == _sha(
        b"train-a, changed")
    assert ws.datasets["mnist"].version == 2
    with pytest.raises(TrainyardError) as raised:
        Dataset.File.from_files([(ws.get_default_datastore(), "nothing/*.x")]).register(ws, "e")
    assert raised.value.status == 422 and raised.value.field == "paths[0]"


TRAIN = """\
import os, sys
from trainyard import Run
data, labels = sys.argv[1], sys.argv[2]
found = sorted(os.path.relpath(os.path.join(root, name), data)
               for root, _, names in os.walk(data) for name in names)
print("found", found, flush=True)
os.makedirs("outputs/model", exist_ok=True)
with open("outputs/model/files.txt", "w") as out:
    out.write("\\n".join(found))
with open("outputs/model/weights.bin", "wb") as out:
    out.write(b"weights")
print("labels at", labels, os.listdir(labels), flush=True)
print("inputs", Run.get_context().input_datasets, flush=True)
"""


def test_a_run_reads_a_dataset_and_registers_a_model(ws, mnist, tmp_path, capsys):
    (tmp_path / "train.py").write_text(TRAIN)
    first = Dataset.get_by_name(ws, "mnist", version=1)
    config = ScriptRunConfig(str(tmp_path), "train.py", arguments=[
        first.as_named_input("mnist").as_mount(),
        first.as_named_input("labels").as_download("/data/labels")],
        environment=Environment("sdk-data-env").register(ws))  # registered: in the lineage
    run = Experiment(ws, "data-inputs").submit(config)
    details = run.wait_for_completion(show_output=True, timeout=RUN_TIMEOUT)
    assert details["status"] == "Completed"
    assert run.input_datasets == {"mnist": "/mnt/inputs/mnist", "labels": "/data/labels"}
    out = capsys.readouterr().out
    assert "ds/train/a.gz" in out and "labels at /data/labels" in out

    model = run.register_model("digits", "outputs/model", tags={"acc": 0.9},
                               model_framework=Model.Framework.CUSTOM,
                               model_framework_version="1",
                               resource_configuration=ResourceConfiguration(cpu=1,
                                                                            memory_in_gb=0.5))
    assert model.version == 1 and model.run_id == run.id
    assert sorted(f["path"] for f in model.files) == ["files.txt", "weights.bin"]
    assert {"name": "mnist", "version": 1} in [
        {"name": d["name"], "version": d["version"]} for d in model.datasets]
    assert model.environment == {"name": "sdk-data-env", "version": 1}
    assert model.resource_configuration == ResourceConfiguration(cpu=1, memory_in_gb=0.5)
    target = model.download(str(tmp_path / "model"))
    assert target == str(tmp_path / "model")
    with open(tmp_path / "model" / "weights.bin", "rb") as handle:
        assert handle.read() == b"weights"
    with open(tmp_path / "model" / "files.txt") as handle:
        assert "ds/train/a.gz" in handle.read()
    single = run.register_model("digits-weights", "outputs/model/weights.bin")
    assert [f["path"] for f in single.files] == ["weights.bin"]


def test_model_registry(ws, tmp_path):
    _tree(tmp_path / "m", {"weights.bin": b"v1", "conf/config.json": b"{}"})
    first = Model.register(ws, str(tmp_path / "m"), "local-model", tags={"stage": "dev"},
                           description="first", model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version="1.5")
    assert (first.version, first.framework, first.run_id) == (1, "ScikitLearn", None)
    assert sorted(f["path"] for f in first.files) == ["conf/config.json", "weights.bin"]
    _tree(tmp_path / "m", {"weights.bin": b"v2"})
    second = Model.register(ws, str(tmp_path / "m" / "weights.bin"), "local-model")
    assert second.version == 2 and [f["path"] for f in second.files] == ["weights.bin"]

    assert Model(ws, "local-model").version == 2
    assert Model.get(ws, "local-model", version=1).description == "first"
    first.set_alias("production")
    assert Model.get(ws, "local-model", alias="production").version == 1
    second.set_alias("production")  # moves it
    assert Model.get(ws, "local-model", alias="production").version == 2
    assert "production" in Model.get(ws, "local-model", version=2).aliases

    first.add_tags({"reviewed": "yes"})
    first.update(description="the first one")
    again = Model.get(ws, "local-model", version=1)
    assert again.tags == {"stage": "dev", "reviewed": "yes"}
    assert again.description == "the first one"
    again.remove_tags("stage")
    assert Model.get(ws, "local-model", version=1).tags == {"reviewed": "yes"}

    assert [m.version for m in Model.list(ws, name="local-model")] == [2, 1] or \
        sorted(m.version for m in Model.list(ws, name="local-model")) == [1, 2]
    assert "local-model" in ws.models and ws.models["local-model"].version == 2

    path = second.download(str(tmp_path / "out"))
    with open(path, "rb") as handle:
        assert handle.read() == b"v2"
    with pytest.raises(FileExistsError):
        second.download(str(tmp_path / "out"))

    second.remove_alias("production")
    with pytest.raises(TrainyardError) as raised:
        Model.get(ws, "local-model", alias="production")
    assert raised.value.status == 404
    first.delete()
    with pytest.raises(TrainyardError) as raised:
        Model.get(ws, "local-model", version=1)
    assert raised.value.status == 404
    assert [m.version for m in Model.list(ws, name="local-model")] == [2]


S3_ENDPOINT = os.environ.get("TRAINYARD_TEST_S3_ENDPOINT")
S3_BUCKET = os.environ.get("TRAINYARD_TEST_S3_BUCKET")


@pytest.mark.skipif(not (S3_ENDPOINT and S3_BUCKET), reason=(
    "needs an S3-compatible server: TRAINYARD_TEST_S3_ENDPOINT and TRAINYARD_TEST_S3_BUCKET, "
    "with its keys in the server's TRAINYARD_TEST_S3_KEY_ID and TRAINYARD_TEST_S3_SECRET "
    "(deploy/test-python.sh starts moto for this)"))
def test_s3_datastore_upload_dataset_versions_and_download(ws, tmp_path):
    store = Datastore.register_s3(
        ws, "s3data", S3_BUCKET, prefix=f"sdk-{uuid.uuid4().hex[:8]}", region="us-east-1",
        endpoint=S3_ENDPOINT, access_key_id_env="TRAINYARD_TEST_S3_KEY_ID",
        secret_access_key_env="TRAINYARD_TEST_S3_SECRET")
    assert store.datastore_type == "s3"
    # The secrets are only named, never shown.
    view = ws._http.get(ws._path("datastores", "s3data"))
    assert view["options"]["aws_secret_access_key"] == {"env": "TRAINYARD_TEST_S3_SECRET"}

    # 12 MiB crosses object_store's multipart threshold (10 MiB).
    files = dict(FILES, **{"big/blob.bin": os.urandom(12 << 20)})
    _tree(tmp_path / "src", files)
    store.upload(str(tmp_path / "src"), target_path="mnist", overwrite=True, show_progress=False)
    listed = {item["path"]: item["size"] for item in store.list("mnist")}
    assert listed == {f"mnist/{rel}": len(data) for rel, data in files.items()}

    v1 = Dataset.File.from_files((store, "mnist/")).register(ws, "s3-mnist")
    changed = dict(files, **{"a.txt": b"alpha, version two\n"})
    _tree(tmp_path / "src", {"a.txt": changed["a.txt"]})
    store.upload_files([str(tmp_path / "src" / "a.txt")], target_path="mnist",
                       overwrite=True, show_progress=False)
    v2 = Dataset.File.from_files((store, "mnist/")).register(
        ws, "s3-mnist", create_new_version=True)
    assert (v1.version, v2.version) == (1, 2)

    for version, expected in ((v1, files), (v2, changed)):
        target = tmp_path / f"v{version.version}"
        local = version.download(str(target), show_progress=False)
        assert len(local) == len(expected)
        for rel, data in expected.items():
            with open(target / "mnist" / rel, "rb") as handle:
                assert _sha(handle.read()) == _sha(data), (version.version, rel)
    with pytest.raises(FileExistsError):
        v1.download(str(tmp_path / "v1"), show_progress=False)
