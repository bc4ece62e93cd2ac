"""Notebook-style submission of the digits classifier, as in the Azure ML guides.

Reads the workspace from .trainyard/config.json or TRAINYARD_URL /
TRAINYARD_WORKSPACE / TRAINYARD_TOKEN, registers the environment, submits
train.py, follows its output live and prints the final accuracy read back from
the logged metrics; then registers the model, downloads it back and predicts
with it.

    python examples/digits/submit.py [--epochs 40] [--min-accuracy 0.9]
"""

import argparse
import os
import sys
import tempfile

import numpy as np

from trainyard import Environment, Experiment, Model, ScriptRunConfig, Workspace

HERE = os.path.dirname(os.path.abspath(__file__))

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--min-accuracy", type=float, default=None,
                    help="exit with status 1 when the final accuracy is not above this")
args = parser.parse_args()

ws = Workspace.from_config()
experiment = Experiment(workspace=ws, name="digits")

env = Environment.from_pip_requirements(name="digits-sklearn",
                                        file_path=os.path.join(HERE, "requirements.txt"))
env = env.register(workspace=ws)
print(f"environment {env.name} version {env.version}: {env.image}")

config = ScriptRunConfig(source_directory=HERE,
                         script="train.py",
                         arguments=["--epochs", args.epochs, "--learning-rate", 0.5],
                         environment=env)
run = experiment.submit(config)
print(f"run {run.id}: {run.get_portal_url()}")
run.wait_for_completion(show_output=True)

metrics = run.get_metrics()
accuracy = metrics["accuracy"][-1]
print(f"final accuracy (from the logged metrics): {accuracy:.4f}")
print("files:", ", ".join(run.get_file_names()))

model = run.register_model(model_name="digits-mlp", model_path="outputs",
                           model_framework=Model.Framework.CUSTOM,
                           model_framework_version=np.__version__,
                           resource_configuration={"cpu": 1, "memory_in_gb": 0.5},
                           tags={"accuracy": f"{accuracy:.4f}"},
                           description="two-layer network on the 8x8 digits")
print(f"registered model {model.name} version {model.version}")

# Load the registered model back, as a scoring service would, and predict.
with tempfile.TemporaryDirectory() as folder:
    path = Model(ws, "digits-mlp", version=model.version).download(target_dir=folder)
    weights = np.load(os.path.join(path, "model.npz"))
    holdout = np.load(os.path.join(path, "holdout.npz"))
    hidden = np.maximum(0.0, holdout["x"] @ weights["w1"] + weights["b1"])
    predicted = (hidden @ weights["w2"] + weights["b2"]).argmax(axis=1)
    served = float((predicted == holdout["y"]).mean())
print(f"accuracy of the downloaded model on its holdout sample: {served:.4f}")

if args.min_accuracy is not None:
    for label, value in [("logged", accuracy), ("downloaded model", served)]:
        if not value > args.min_accuracy:
            sys.exit(f"{label} accuracy {value:.4f} is not above {args.min_accuracy}")
