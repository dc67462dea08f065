"""A first c2 program: build a net, run it, save and reload its blobs, read the catalogue.

Uses only operators built into the core, so it runs with no op pack installed.
"""
import os
import sys
import tempfile

import numpy as np

from c2core import core, registry, workspace
from c2core.proto import caffe2_pb2


def main(out_dir):
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.arange(6, dtype=np.float32).reshape(2, 3))
    workspace.FeedBlob("bias", np.full((2, 3), 0.5, dtype=np.float32))

    net = core.Net("hello")
    y = net.Sum(["x", "bias"], "y")             # y = x + bias
    net.Sum([y, y, "x"], "z")                   # z = 2y + x
    net.AddExternalOutput("z")
    print("The net, as the NetDef protobuf Caffe2 would write:\n")
    print(net.Proto())

    shapes, types = workspace.InferShapesAndTypes([net])
    print("Inferred before running:", {b: (s, caffe2_pb2.TensorProto.DataType.Name(types[b]))
                                         for b, s in shapes.items()})

    workspace.CreateNet(net)
    workspace.RunNet("hello", num_iter=3)
    z = workspace.FetchBlob("z")
    print("z =\n", z)
    assert np.allclose(z, 3 * np.arange(6).reshape(2, 3) + 1.0)

    db = os.path.join(out_dir, "hello.minidb")
    workspace.RunOperatorOnce(core.CreateOperator(
        "Save", ["x", "bias", "z"], [], db=db, db_type="minidb", absolute_path=1))
    workspace.ResetWorkspace()
    workspace.RunOperatorOnce(core.CreateOperator(
        "Load", [], [], db=db, db_type="minidb", absolute_path=1, load_all=1))
    print(f"Reloaded from {db}:", workspace.Blobs())
    assert np.array_equal(workspace.FetchBlob("z"), z)

    reg = registry.get()
    print("\nInstalled op packs:", ", ".join(f"{p.name} {p.version}" for p in reg.packs.values()))
    print(f"{len(reg.op_types())} operators registered, e.g.: {', '.join(reg.op_types()[:8])}")
    return z


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="c2-hello-")
    main(out)
    print("\nOK")
