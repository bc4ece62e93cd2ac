"""The model registry, against the fake server."""

import io
import tarfile

import pytest

from conftest import RUN_ID, WS, problem
from trainyard import Model, ResourceConfiguration, Run, TrainyardError

MODELS = f"{WS}/models"


def model_view(version=1, **extra):
    view = {"id": f"m{version}", "name": "cnn", "version": version, "framework": "PyTorch",
            "framework_version": "2.5", "resource_configuration": {"cpu": 1, "memory_in_gb": 0.5,
                                                                   "gpu": 0},
            "tags": {"acc": "0.9"}, "properties": {"arch": "cnn"}, "description": "digits",
            "run_id": RUN_ID, "environment": {"name": "torchy", "version": 3},
            "datasets": [{"name": "mnist", "version": 2}],
            "files": [{"path": "model.npz", "size": 3}], "aliases": [],
            "created_at": "2026-11-23T12:00:00Z"}
    view.update(extra)
    return view


def tar_gz(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_resource_configuration_and_frameworks():
    config = ResourceConfiguration(cpu=2, memory_in_gb=4)
    assert config.serialize() == {"cpu": 2, "memory_in_gb": 4}
    assert ResourceConfiguration.deserialize({"cpu": 2, "memory_in_gb": 4}) == config
    assert ResourceConfiguration.deserialize(None) is None
    assert (Model.Framework.SCIKITLEARN, Model.Framework.TENSORFLOW, Model.Framework.PYTORCH,
            Model.Framework.ONNX, Model.Framework.CUSTOM) == (
        "ScikitLearn", "TensorFlow", "PyTorch", "Onnx", "Custom")


def test_run_register_model(fake, workspace):
    fake.route("POST", MODELS, (201, model_view()))
    run = Run(None, RUN_ID, _workspace=workspace)
    model = run.register_model("cnn", "outputs/model.npz", tags={"acc": 0.9},
                               properties={"arch": "cnn"},
                               model_framework=Model.Framework.PYTORCH,
                               model_framework_version="2.5", description="digits",
                               resource_configuration=ResourceConfiguration(1, 0.5, 0))
    assert fake.received("POST", MODELS)[0].json() == {
        "name": "cnn", "run_id": RUN_ID, "path": "outputs/model.npz", "framework": "PyTorch",
        "framework_version": "2.5", "resource_configuration": {"cpu": 1, "memory_in_gb": 0.5,
                                                               "gpu": 0},
        "tags": {"acc": "0.9"}, "properties": {"arch": "cnn"}, "description": "digits"}
    assert (model.name, model.version, model.id, model.run_id) == ("cnn", 1, "m1", RUN_ID)
    assert model.resource_configuration == ResourceConfiguration(1, 0.5, 0)
    assert model.environment == {"name": "torchy", "version": 3}
    assert model.datasets == [{"name": "mnist", "version": 2}]
    assert model.files == [{"path": "model.npz", "size": 3}] and model.aliases == []
    run.register_model("cnn", "/outputs/")
    assert fake.received("POST", MODELS)[1].json() == {"name": "cnn", "run_id": RUN_ID,
                                                       "path": "outputs"}
    fake.route("POST", MODELS, problem(404, "not_found", "no file outputs/x", "path"))
    with pytest.raises(TrainyardError) as raised:
        run.register_model("cnn", "outputs/x")
    assert raised.value.field == "path"


def test_register_local_files(fake, workspace, tmp_path):
    fake.route("POST", f"{WS}/snapshots", (201, {"digest": "cd" * 32}))
    fake.route("POST", MODELS, (201, model_view(2, run_id=None, environment=None)))
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "sub" / "config.json").write_text("{}")
    model = Model.register(workspace, str(folder), "cnn", tags={"stage": "dev"},
                           model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version="1.5",
                           resource_configuration={"cpu": 2})
    upload = fake.received("POST", f"{WS}/snapshots")[0]
    assert upload.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(upload.body), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["sub/config.json", "weights.bin"]
    assert fake.received("POST", MODELS)[0].json() == {
        "name": "cnn", "snapshot": "cd" * 32, "framework": "ScikitLearn",
        "framework_version": "1.5", "resource_configuration": {"cpu": 2},
        "tags": {"stage": "dev"}}
    assert model.version == 2 and model.run is None

    Model.register(workspace, str(folder / "weights.bin"), "single")
    with tarfile.open(fileobj=io.BytesIO(fake.received("POST", f"{WS}/snapshots")[1].body),
                      mode="r:gz") as tar:
        assert tar.getnames() == ["weights.bin"]
    with pytest.raises(FileNotFoundError):
        Model.register(workspace, str(tmp_path / "missing"), "cnn")


def test_get_by_version_alias_and_latest(fake, workspace):
    fake.route("GET", f"{MODELS}/cnn", (200, model_view(3)))
    assert Model(workspace, "cnn").version == 3
    Model(workspace, "cnn", version=1)
    Model.get(workspace, "cnn", alias="production")
    Model(workspace, id="cnn:2")
    assert [r.query for r in fake.received("GET", f"{MODELS}/cnn")] == [
        {}, {"version": ["1"]}, {"alias": ["production"]}, {"version": ["2"]}]
    with pytest.raises(ValueError):
        Model(workspace, "cnn", version=1, alias="production")
    with pytest.raises(ValueError):
        Model(workspace)


def test_list(fake, workspace):
    other = dict(model_view(1), name="other", id="o1", tags={})
    fake.route("GET", MODELS, (200, {"items": [model_view(2), other]}))
    fake.route("GET", f"{MODELS}/cnn/versions", (200, {"items": [
        model_view(2), model_view(1, tags={})]}))
    fake.route("GET", f"{MODELS}/other/versions", (200, {"items": [other]}))
    assert [(m.name, m.version) for m in Model.list(workspace, latest=True)] == [
        ("cnn", 2), ("other", 1)]
    assert [(m.name, m.version) for m in Model.list(workspace)] == [
        ("cnn", 2), ("cnn", 1), ("other", 1)]
    assert [m.version for m in Model.list(workspace, name="cnn")] == [2, 1]
    assert [m.version for m in Model.list(workspace, name="cnn", latest=True)] == [2]
    assert [m.version for m in Model.list(workspace, name="cnn", tags=["acc"])] == [2]
    assert [m.version for m in Model.list(workspace, name="cnn",
                                          tags=[["acc", "0.8"]])] == []
    assert [m.version for m in Model.list(workspace, name="cnn",
                                          properties=[("arch", "cnn")])] == [2, 1]
    assert list(workspace.models) == ["cnn", "other"]


def test_tags_description_aliases_delete(fake, workspace):
    version_path = f"{MODELS}/cnn/versions/1"
    model = Model._from_view(workspace, model_view())
    fake.route("PATCH", version_path,
               lambda r: (200, model_view(**{k: v for k, v in r.json().items()})))
    model.add_tags({"stage": "prod"})
    assert fake.received("PATCH", version_path)[0].json() == {
        "tags": {"acc": "0.9", "stage": "prod"}}
    assert model.tags == {"acc": "0.9", "stage": "prod"}
    model.remove_tags("acc")
    assert fake.received("PATCH", version_path)[1].json() == {"tags": {"stage": "prod"}}
    model.update(description="better")
    assert fake.received("PATCH", version_path)[2].json() == {"description": "better"}
    assert model.description == "better"

    fake.route("PUT", f"{MODELS}/cnn/aliases/production", (200, {"version": 1}))
    fake.route("DELETE", f"{MODELS}/cnn/aliases/production", (204, None))
    model.set_alias("production")
    assert fake.received("PUT", f"{MODELS}/cnn/aliases/production")[0].json() == {"version": 1}
    assert model.aliases == ["production"]
    model.remove_alias("production")
    assert fake.received("DELETE", f"{MODELS}/cnn/aliases/production") and model.aliases == []

    fake.route("DELETE", version_path, (204, None))
    model.delete()
    assert fake.received("DELETE", version_path)


def test_download(fake, workspace, tmp_path):
    archive = tar_gz({"model.npz": b"abc"})
    fake.route("GET", f"{MODELS}/cnn/versions/1/download", (200, archive,
                                                           {"Content-Type": "application/gzip"}))
    model = Model._from_view(workspace, model_view())
    path = model.download(str(tmp_path / "out"))
    assert path == str(tmp_path / "out" / "model.npz") and open(path, "rb").read() == b"abc"
    with pytest.raises(FileExistsError):
        model.download(str(tmp_path / "out"))
    assert model.download(str(tmp_path / "out"), exist_ok=True) == path

    folder = Model._from_view(workspace, model_view(2, files=[
        {"path": "weights.bin", "size": 1}, {"path": "sub/config.json", "size": 2}]))
    fake.route("GET", f"{MODELS}/cnn/versions/2/download", (200, tar_gz(
        {"weights.bin": b"w", "sub/config.json": b"{}", "../evil": b"x"})))
    target = folder.download(str(tmp_path / "folder"))
    assert target == str(tmp_path / "folder")
    assert (tmp_path / "folder" / "sub" / "config.json").read_bytes() == b"{}"
    assert not (tmp_path / "evil").exists()
