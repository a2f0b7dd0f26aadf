"""The ``onnx-net`` flavour: a neural network in ONNX (built here with onnx's helpers: one
dense layer and a sigmoid), registered, loaded and served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from loopline.models import load
from loopline.models.onnxnet import pack
from loopline.registry import Registry


def _network(w: np.ndarray, b: np.ndarray) -> bytes:
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["p"]),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_a_network_is_served_by_its_flavour(tmp_path: Path) -> None:
    w = np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    b = np.array([0.1], dtype=np.float32)
    registry = Registry(root=tmp_path / "registry")
    packed = pack(onnx=_network(w, b), task="binary", inputs=("a", "b", "c"))
    version = registry.register("net", bundle=packed, metrics={}, params={}, tags={})
    model = load(registry.resolve("net", version.version))
    x = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    got, fell_back = model.predict(x)
    expected = 1 / (1 + np.exp(-(x @ w[:, 0] + b[0])))
    assert not fell_back
    assert np.allclose(got, expected, atol=1e-6)
    assert model.label == "net:1"
