"""Trainyard's Python SDK: submit training runs and log metrics, Azure ML v1 style.

Port an Azure Machine Learning (SDK v1) notebook by changing its import::

    from trainyard import Workspace, Experiment, Environment, ScriptRunConfig, Run
    # or: from trainyard.core import Workspace, Experiment, ...

    ws = Workspace.from_config()                 # .trainyard/config.json or TRAINYARD_* vars
    env = Environment.from_pip_requirements("torchy", "requirements.txt")
    src = ScriptRunConfig(source_directory="./mnist", script="train.py",
                          arguments=["--lr", 0.01], environment=env)
    run = Experiment(ws, "tf-mnist").submit(src)
    run.wait_for_completion(show_output=True)

Inside the training script::

    run = Run.get_context()                      # the run, or an OfflineRun locally
    run.log("loss", 0.31)

Pure Python, standard library only.
"""

from .environment import DockerSection, Environment
from .exceptions import (
    ActivityFailedException,
    ConfigError,
    MetricsError,
    RunFailedError,
    TrainyardConnectionError,
    TrainyardError,
    UserErrorException,
)
from .experiment import Experiment
from .offline import OfflineRun
from .run import Run
from .script_run_config import ScriptRunConfig
from .workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "Workspace",
    "Experiment",
    "Environment",
    "DockerSection",
    "ScriptRunConfig",
    "Run",
    "OfflineRun",
    "TrainyardError",
    "TrainyardConnectionError",
    "ConfigError",
    "RunFailedError",
    "MetricsError",
    "ActivityFailedException",
    "UserErrorException",
    "__version__",
]
