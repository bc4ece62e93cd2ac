"""Compute targets against a live server: the seed's get-or-create cell, nodes,
cordoning and deletion. Needs ``TRAINYARD_TEST_URL`` and ``TRAINYARD_TEST_TOKEN``
(a server administrator token)."""

import os
import uuid

import pytest

from trainyard import Workspace
from trainyard.compute import AmlCompute, ComputeTarget, ComputeTargetException

URL = os.environ.get("TRAINYARD_TEST_URL")
TOKEN = os.environ.get("TRAINYARD_TEST_TOKEN")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (URL and TOKEN), reason=(
        "integration tests need a live server: set TRAINYARD_TEST_URL and "
        "TRAINYARD_TEST_TOKEN (a server administrator token)")),
]


def test_get_or_create_register_nodes_cordon_and_delete(capsys):
    ws = Workspace.create(f"sdk-compute-{uuid.uuid4().hex[:12]}", URL, TOKEN)
    # The seed's cell, unchanged but for the import.
    try:
        target = ComputeTarget(workspace=ws, name="gpucluster")
        found = True
    except ComputeTargetException as err:
        assert err.status == 404
        found = False
        config = AmlCompute.provisioning_configuration(vm_size="8xA100", max_nodes=2,
                                                       min_nodes=0, gpus=1)
        target = ComputeTarget.create(ws, "gpucluster", config)
    assert not found
    assert (target.max_nodes, target.labels, target.default_resources["gpus"]) == (
        2, {"vm_size": "8xA100"}, 1)
    assert ComputeTarget(ws, "gpucluster").name == "gpucluster"

    node = target.register_node("node-1", "unix:///var/run/docker.sock", cpus=16,
                                memory_mb=65536, gpus=8, gpu_mode="simulated")
    assert node["capacity"]["gpus"] == 8 and node["state"] == "ready"
    target.register_node("node-2", "tcp://10.0.0.7:2376", cpus=8, memory_mb=32768, gpus=4,
                         tls={"ca": "/etc/ty/ca.pem", "cert": "/etc/ty/cert.pem",
                              "key": "/etc/ty/key.pem"})
    assert target.set_node_state("node-2", "draining", "moving racks")["state"] == "draining"
    target.wait_for_completion(show_output=True)
    out = capsys.readouterr().out
    assert "2 of at most 2 nodes" in out and "node-2 draining 4 GPUs" in out
    assert [t.name for t in ComputeTarget.list(ws)] == ["gpucluster"]

    target.delete()
    with pytest.raises(ComputeTargetException):
        ComputeTarget(ws, "gpucluster")
