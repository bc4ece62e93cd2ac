"""Azure ML's ``azureml.core`` names: ``from trainyard.core import Workspace, Run, …``.

Also importable as module paths Azure code uses, e.g.
``from trainyard.core import ScriptRunConfig, Environment``. The distributed
configurations of ``azureml.core.runconfig`` are also in ``trainyard.runconfig``.
"""

from .dataset import Dataset, DatasetConsumptionConfig, FileDataset
from .datastore import DataPath, Datastore
from .environment import DockerSection, Environment
from .exceptions import ActivityFailedException, UserErrorException
from .experiment import Experiment
from .model import Model, ResourceConfiguration
from .run import Run
from .runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from .script_run_config import ScriptRunConfig
from .workspace import Workspace

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
    "Datastore",
    "DataPath",
    "Dataset",
    "FileDataset",
    "DatasetConsumptionConfig",
    "Model",
    "ResourceConfiguration",
    "ActivityFailedException",
    "UserErrorException",
]
