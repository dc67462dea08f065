"""Save and Load under a CUDA DeviceOption, as Caffe2 registers them for the GPU.

Save is the core's kernel (it copies device tensors to the host as it writes);
Load is the core's kernel followed by moving the numeric tensors it named as
outputs onto the op's GPU (blobs that ``load_all`` creates stay on the host).
"""
from __future__ import annotations

import numpy as np

from c2core.ops.serialization_ops import LoadOp, SaveOp
from c2ops_cuda import runtime


class SaveCudaOp(SaveOp):
    """The core's Save (it reads every input wherever it lives), with the op's GPU current for the copies."""

    def setup(self):
        super().setup()
        self.ordinal = self.device_option.cuda_gpu_id

    def run(self):
        with runtime.on_device(self.ordinal):
            super().run()


class LoadCudaOp(LoadOp):
    def setup(self):
        super().setup()
        self.ordinal = self.device_option.cuda_gpu_id

    def run(self):
        super().run()
        with runtime.on_device(self.ordinal):
            for blob in self.outputs:
                v = blob.value
                if isinstance(v, np.ndarray) and v.dtype != object and v.dtype.kind not in "SUV":
                    blob.value = runtime.to_gpu(v)


def register(registrar):
    from c2core.proto import caffe2_pb2
    registrar.kernel("Save", SaveCudaOp, device=caffe2_pb2.CUDA)
    registrar.kernel("Load", LoadCudaOp, device=caffe2_pb2.CUDA)
