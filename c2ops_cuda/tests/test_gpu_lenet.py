"""The LeNet demo's model trains on the GPU to the accuracy it reaches on the CPU (skipped without a GPU).

Same net (c2core.examples.lenet), same data, same hyper-parameters; the only
change is the DeviceOption the model is built under, as a Caffe2 user moves a
model to the GPU. Weights start from different random numbers (cuRAND versus
NumPy), so the accuracies are compared with a tolerance.
"""
import os

import numpy as np
import pytest

from c2core import brew, core, model_helper, optimizer, workspace
from c2core.examples import lenet
from c2core.proto import caffe2_pb2

pytestmark = pytest.mark.usefixtures("gpu")
ITERATIONS = int(os.environ.get("C2_LENET_GPU_ITERATIONS", "300"))
BATCH = 64


def train_and_test(option, seed=0, iterations=ITERATIONS):
    """(test accuracy, first losses, last losses) of LeNet trained under `option`."""
    pytest.importorskip("sklearn")
    workspace.ResetWorkspace()
    (train_x, train_y), (test_x, test_y) = lenet.load_digits(seed)
    model = model_helper.ModelHelper(name="lenet_dev", arg_scope={"order": "NCHW"})
    with core.DeviceScope(option):
        softmax = lenet.lenet(model, "data")
        xent = model.LabelCrossEntropy([softmax, "label"], "xent")
        loss = model.AveragedLoss(xent, "loss")
        brew.accuracy(model, [softmax, "label"], "accuracy")
        model.AddGradientOperators([loss])
        optimizer.build_sgd(model, base_learning_rate=0.02, policy="step", stepsize=400, gamma=0.5, momentum=0.9)
    workspace.RunNetOnce(model.param_init_net)
    rng = np.random.default_rng(seed)

    def feed(x, y):
        workspace.FeedBlob("data", x, option)
        workspace.FeedBlob("label", y, option)

    order = rng.permutation(len(train_y))
    feed(train_x[order[:BATCH]], train_y[order[:BATCH]])
    workspace.CreateNet(model.net)
    losses = []
    pos = 0
    for _ in range(iterations):
        if pos + BATCH > len(order):
            order, pos = rng.permutation(len(train_y)), 0
        pick = order[pos:pos + BATCH]
        pos += BATCH
        feed(train_x[pick], train_y[pick])
        workspace.RunNet(model.net)
        losses.append(float(workspace.FetchBlob("loss")))

    test = model_helper.ModelHelper(name="lenet_dev_test", arg_scope={"order": "NCHW"}, init_params=False)
    with core.DeviceScope(option):
        brew.accuracy(test, [lenet.lenet(test, "data"), "label"], "test_accuracy")
    feed(test_x, test_y)
    workspace.RunNetOnce(test.net)
    return float(workspace.FetchBlob("test_accuracy")), losses[:20], losses[-20:]


def test_lenet_trains_on_the_gpu_to_the_cpu_accuracy():
    gpu_acc, gpu_first, gpu_last = train_and_test(core.DeviceOption(caffe2_pb2.CUDA, 0, random_seed=1))
    blob = workspace.current().get_blob("conv1_w")
    assert type(blob.value).__name__ == "GPUArray", "the parameters did not live on the GPU"
    cpu_acc, _, _ = train_and_test(core.DeviceOption(caffe2_pb2.CPU, random_seed=1))
    print(f"LeNet after {ITERATIONS} iterations: GPU test accuracy {gpu_acc:.4f}, CPU {cpu_acc:.4f}")
    assert np.mean(gpu_last) < 0.5 * np.mean(gpu_first)
    assert gpu_acc >= 0.9 and abs(gpu_acc - cpu_acc) <= 0.03
