"""Notebook-style submission of the digits classifier, as in the Azure ML guides.

Reads the workspace from .trainyard/config.json or TRAINYARD_URL /
TRAINYARD_WORKSPACE / TRAINYARD_TOKEN, registers the environment, submits
train.py, follows its output live and prints the final accuracy read back from
the logged metrics.

    python examples/digits/submit.py [--epochs 40] [--min-accuracy 0.9]
"""

import argparse
import os
import sys

from trainyard import Environment, Experiment, ScriptRunConfig, Workspace

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
if args.min_accuracy is not None and not accuracy > args.min_accuracy:
    sys.exit(f"accuracy {accuracy:.4f} is not above {args.min_accuracy}")
