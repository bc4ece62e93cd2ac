"""Models through the real ``mlflow`` client: a scikit-learn model logged
with MLflow 3's logged models, registered, given an alias, loaded back by
``models:/name@alias`` and used to predict; then the same model through
Trainyard's SDK."""

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from trainyard import Model


def test_log_register_alias_load_and_predict(tmp_path, trainyard_ws):
    X, y = load_iris(return_X_y=True)
    classifier = LogisticRegression(max_iter=300).fit(X, y)
    mlflow.set_experiment("models")
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 300)
        info = mlflow.sklearn.log_model(classifier, name="model", input_example=X[:2])
    assert info.model_uri.startswith("models:/m-")
    version = mlflow.register_model(info.model_uri, "iris-classifier")
    assert version.version == "1" and version.run_id == run.info.run_id
    client = MlflowClient()
    client.set_registered_model_alias("iris-classifier", "champion", version.version)
    client.update_model_version("iris-classifier", version.version, description="first")
    client.set_model_version_tag("iris-classifier", version.version, "validated", "yes")

    loaded = mlflow.pyfunc.load_model("models:/iris-classifier@champion")
    assert (loaded.predict(X[:10]) == classifier.predict(X[:10])).all()

    by_alias = client.get_model_version_by_alias("iris-classifier", "champion")
    assert by_alias.version == "1" and by_alias.tags == {"validated": "yes"}
    registered = client.get_registered_model("iris-classifier")
    assert registered.aliases == {"champion": "1"}
    client.transition_model_version_stage("iris-classifier", "1", "Production")
    [latest] = client.get_latest_versions("iris-classifier", stages=["Production"])
    assert latest.version == "1"
    assert [v.version for v in client.search_model_versions("name = 'iris-classifier'")] == ["1"]
    assert [m.name for m in client.search_registered_models("name LIKE 'iris%'")] == ["iris-classifier"]

    # The same model through Trainyard's SDK: one registry, the same alias.
    model = Model.get(trainyard_ws, "iris-classifier", alias="champion")
    assert model.version == 1 and "champion" in model.aliases
    assert model.run.id == run.info.run_id
    assert {"MLmodel", "model.skops"} <= {f["path"] for f in model.files}
    target = model.download(str(tmp_path / "model"))
    assert (tmp_path / "model").exists() and target


def test_registry_lifecycle():
    client = MlflowClient()
    client.create_registered_model("lifecycle-model", tags={"team": "ml"}, description="d")
    client.rename_registered_model("lifecycle-model", "lifecycle-model-2")
    client.set_registered_model_tag("lifecycle-model-2", "stage", "dev")
    client.delete_registered_model_tag("lifecycle-model-2", "team")
    model = client.get_registered_model("lifecycle-model-2")
    assert model.tags == {"stage": "dev"} and model.description == "d"
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    version = client.create_model_version("lifecycle-model-2", f"runs:/{run.info.run_id}/model",
                                          run_id=run.info.run_id)
    uri = client.get_model_version_download_uri("lifecycle-model-2", version.version)
    assert uri.startswith("mlflow-artifacts:/models/")
    client.delete_model_version("lifecycle-model-2", version.version)
    client.delete_registered_model("lifecycle-model-2")
    assert "lifecycle-model-2" not in [m.name for m in client.search_registered_models()]
