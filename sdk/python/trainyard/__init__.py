"""Trainyard's Python SDK: runs, metrics, datasets and models, Azure ML v1 style.

Port an Azure Machine Learning (SDK v1) notebook by changing its import::

    from trainyard import Workspace, Experiment, Environment, ScriptRunConfig, Run
    # or: from trainyard.core import Workspace, Experiment, ...

    ws = Workspace.from_config()                 # .trainyard/config.json or TRAINYARD_* vars
    env = Environment.from_pip_requirements("torchy", "requirements.txt")
    src = ScriptRunConfig(source_directory="./mnist", script="train.py",
                          arguments=["--lr", 0.01], environment=env)
    run = Experiment(ws, "tf-mnist").submit(src)
    run.wait_for_completion(show_output=True)

Data and models::

    ds = Dataset.File.from_files([(ws.get_default_datastore(), "mnist/*.gz")])
    ds = ds.register(ws, "mnist", create_new_version=True)
    src = ScriptRunConfig("./mnist", "train.py",
                          arguments=["--data", ds.as_named_input("mnist").as_mount()])
    model = run.register_model("mnist-cnn", "outputs/model.npz")

Distributed training (2 nodes × 4 processes, torch.distributed)::

    from trainyard import PyTorchConfiguration
    src = ScriptRunConfig("./src", "train.py", compute_target="gpucluster",
                          distributed_job_config=PyTorchConfiguration(process_count=8,
                                                                      node_count=2))

Inside the training script::

    run = Run.get_context()                      # the run, or an OfflineRun locally
    run.log("loss", 0.31)

Pure Python, standard library only.
"""

from .compute import AmlCompute, ComputeTarget, ComputeTargetException
from .dataset import Dataset, DatasetConsumptionConfig, FileDataset
from .datastore import DataPath, Datastore
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
from .model import Model, ResourceConfiguration
from .offline import OfflineRun
from .run import Run
from .runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from .script_run_config import ScriptRunConfig
from .workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "Workspace",
    "Experiment",
    "Environment",
    "DockerSection",
    "ScriptRunConfig",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "TensorflowConfiguration",
    "Run",
    "OfflineRun",
    "ComputeTarget",
    "ComputeTargetException",
    "AmlCompute",
    "Datastore",
    "DataPath",
    "Dataset",
    "FileDataset",
    "DatasetConsumptionConfig",
    "Model",
    "ResourceConfiguration",
    "TrainyardError",
    "TrainyardConnectionError",
    "ConfigError",
    "RunFailedError",
    "MetricsError",
    "ActivityFailedException",
    "UserErrorException",
    "__version__",
]
