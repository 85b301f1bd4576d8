#!/usr/bin/env python3
"""Convert a MediaPipe .tflite model to ONNX reproducibly, or describe an ONNX model's inputs/outputs.

Why this wrapper exists: tflite2onnx 0.4.1 emits the graph's initializers (weights) and value_info in
set/dict order that changes from run to run, so two conversions of the same file differ byte-wise
although they are the same model. We sort both lists by name and serialize deterministically, so the
sha256 in models/manifest.toml holds on every machine with the pinned models/requirements.txt.

What it deliberately does not do: download anything, change the graph (no optimisation, no opset
change, no renaming), or decide where files go; scripts/setup.sh does the fetching and the checks.

Usage:
    convert.py convert SRC.tflite DST.onnx
    convert.py describe FILE.onnx [...]
"""

import os
import sys
import tempfile

import onnx


def canonicalize(model: onnx.ModelProto) -> None:
    """Put the order-free lists of the graph in name order (they are sets to ONNX Runtime)."""
    graph = model.graph
    for field in ("initializer", "value_info"):
        items = sorted(getattr(graph, field), key=lambda t: t.name)
        del getattr(graph, field)[:]
        getattr(graph, field).extend(items)


def convert(src: str, dst: str) -> None:
    import tflite2onnx  # imported here so `describe` works without the converter installed

    dst_dir = os.path.dirname(os.path.abspath(dst))
    with tempfile.TemporaryDirectory(dir=dst_dir) as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        tflite2onnx.convert(src, raw)
        model = onnx.load(raw)
        canonicalize(model)
        onnx.checker.check_model(model)
        out = os.path.join(tmp, "out.onnx")
        with open(out, "wb") as f:
            f.write(model.SerializeToString(deterministic=True))
        # Rename inside the destination directory so a half-written model is never seen as done.
        os.replace(out, dst)


def describe(path: str) -> None:
    model = onnx.load(path)
    elem = {v: k for k, v in onnx.TensorProto.DataType.items()}

    def spec(v):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
        return f"{v.name!r} {elem[t.elem_type].lower()} {dims}"

    print(f"{path}: opset {[o.version for o in model.opset_import]}")
    for v in model.graph.input:
        print(f"  input  {spec(v)}")
    for v in model.graph.output:
        print(f"  output {spec(v)}")


def main(argv):
    if len(argv) == 4 and argv[1] == "convert":
        convert(argv[2], argv[3])
    elif len(argv) >= 3 and argv[1] == "describe":
        for p in argv[2:]:
            describe(p)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
