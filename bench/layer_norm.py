"""Why the embedder's session keeps layer norms unfused (qa/models/onnx.py).

    python bench/layer_norm.py                # 300 BoolQ passages, 3 alternating runs each
    python bench/layer_norm.py --texts 600 --repeats 5

Two measurements, one core each:
- the prepared int8 embedder run as shipped (SkipLayerNormFusion disabled) against
  the same file with onnxruntime allowed to fuse Add + LayerNormalization into
  SkipLayerNormalization, on the same texts, alternating;
- the two kernels alone on one 128 x 384 activation, the shape of a chunk.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from common import arg_parser, boolq_passages, prepare_embedder, table, write_json

HIDDEN, TOKENS = 384, 128


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--texts", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    prepare_embedder()
    whole = whole_model(args.texts, args.repeats)
    kernels = kernel_pair()
    rows = [["embedder, layer norms unfused (shipped)", whole["unfused"], 1.0],
            ["embedder, SkipLayerNormalization fused", whole["fused"], whole["fused"] / whole["unfused"]],
            ["kernel: Add + Add + LayerNormalization (µs)", kernels["unfused"], 1.0],
            ["kernel: SkipLayerNormalization (µs)", kernels["fused"], kernels["fused"] / kernels["unfused"]]]
    print(f"\nLayer norms, {args.texts} BoolQ passages, one core (median of {args.repeats} runs)")
    cells = [[what, round(value, 3), round(ratio, 2)] for what, value, ratio in rows]
    print(table(["what", "seconds (or µs)", "vs unfused"], cells))
    write_json("layer_norm", {"texts": args.texts, "whole_model_s": whole, "kernel_us": kernels})
    return 0


def whole_model(count: int, repeats: int) -> dict[str, float]:
    from qa.models.embedder import load_tokenizer
    from qa.models.files import EMBEDDER_DISTRIBUTION, EMBEDDER_FOLDER, packaged_file
    from qa.models.onnx import DISABLED_FUSIONS, prepare_onnx_model
    from qa.settings import Settings

    tokenizer = load_tokenizer(packaged_file(EMBEDDER_DISTRIBUTION, EMBEDDER_FOLDER))
    tokenizer.enable_truncation(256)
    ids = [e.ids for e in tokenizer.encode_batch([f"{t}. {p}" for t, p in boolq_passages()[:count]])]
    model = prepare_onnx_model(Settings.from_env().cache_dir)
    sessions = {"unfused": _session(str(model), list(DISABLED_FUSIONS)), "fused": _session(str(model), [])}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for run in range(repeats):
        for name in sessions if run % 2 == 0 else reversed(list(sessions)):
            started = time.perf_counter()
            for row in ids:
                tokens = np.asarray([row], dtype=np.int64)
                sessions[name].run(None, {"input_ids": tokens, "attention_mask": np.ones_like(tokens),
                                          "token_type_ids": np.zeros_like(tokens)})
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def kernel_pair(runs: int = 1000) -> dict[str, float]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    constants = [numpy_helper.from_array(rng.random(HIDDEN, dtype=np.float32), n) for n in ("g", "b", "bias")]
    shape = [1, "tokens", HIDDEN]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "skip", "y")]
    fused = [helper.make_node("SkipLayerNormalization", ["x", "skip", "g", "b", "bias"], ["y"],
                              domain="com.microsoft", epsilon=1e-12)]
    unfused = [helper.make_node("Add", ["x", "skip"], ["s"]), helper.make_node("Add", ["s", "bias"], ["t"]),
               helper.make_node("LayerNormalization", ["t", "g", "b"], ["y"], axis=-1, epsilon=1e-12)]
    x = rng.random((1, TOKENS, HIDDEN), dtype=np.float32)
    result = {}
    for name, nodes in (("unfused", unfused), ("fused", fused)):
        graph = helper.make_graph(nodes, name, io[:2], io[2:], constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("com.microsoft", 1)])
        session = _session(model.SerializeToString(), ["SkipLayerNormFusion"])
        for _ in range(10):
            session.run(None, {"x": x, "skip": x})
        started = time.perf_counter()
        for _ in range(runs):
            session.run(None, {"x": x, "skip": x})
        result[name] = (time.perf_counter() - started) / runs * 1e6
    return result


def _session(model: Any, disabled: list[str]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)


if __name__ == "__main__":
    raise SystemExit(main())
