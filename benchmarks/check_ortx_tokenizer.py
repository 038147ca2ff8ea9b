"""Do the ids of onnxruntime-extensions' SentencepieceTokenizer operator equal `InGraphTokenizer`'s?

    python benchmarks/check_ortx_tokenizer.py SPM_MODEL GLUE_ROOT

Tokenizes every SST-2 dev sentence and the first 4,000 train sentences (a) raw and (b) after Python's
`preprocess_text` with the operator in an ONNX Runtime session, and counts texts whose ids equal
`InGraphTokenizer`'s (lower-cased). Needs `onnxruntime-extensions` (not a project dependency).
"""
from __future__ import annotations

import csv
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import onnxruntime_extensions  # noqa: E402
import tensorflow as tf  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from albert_tf import tokenization  # noqa: E402
from albert_tf.in_graph_tokenizer import InGraphTokenizer  # noqa: E402


def sst2_sentences(glue_root: str, train_rows: int = 4000) -> list[str]:
    def column(split: str) -> list[str]:
        with open(os.path.join(glue_root, "SST-2", f"{split}.tsv"), encoding="utf-8") as f:
            return [row[0] for row in list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
    return column("dev") + column("train")[:train_rows]


def operator_session(spm_model_file: str) -> ort.InferenceSession:
    """One SentencepieceTokenizer node: strings [N] -> ids (flat int32) and row offsets [N+1]."""
    with open(spm_model_file, "rb") as f:
        model_bytes = f.read()
    names = [("inputs", TensorProto.STRING), ("nbest_size", TensorProto.INT64), ("alpha", TensorProto.FLOAT),
             ("add_bos", TensorProto.BOOL), ("add_eos", TensorProto.BOOL), ("reverse", TensorProto.BOOL)]
    node = helper.make_node("SentencepieceTokenizer", [n for n, _ in names], ["tokens", "indices"],
                            model=model_bytes, domain="ai.onnx.contrib")
    graph = helper.make_graph(
        [node], "spm", [helper.make_tensor_value_info(n, t, [None]) for n, t in names],
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, [None]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 17),
                                                    helper.make_operatorsetid("ai.onnx.contrib", 1)])
    options = ort.SessionOptions()
    options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    return ort.InferenceSession(model.SerializeToString(), options)


def operator_ids(session: ort.InferenceSession, texts: list[str]) -> list[list[int]]:
    tokens, offsets = session.run(None, {
        "inputs": np.array(texts, dtype=object), "nbest_size": np.array([0], np.int64),
        "alpha": np.array([0], np.float32), "add_bos": np.array([False]), "add_eos": np.array([False]),
        "reverse": np.array([False])})
    return [tokens[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))]


def main(spm_model_file: str, glue_root: str) -> None:
    texts = sst2_sentences(glue_root)
    reference = [list(ids) for ids in InGraphTokenizer(spm_model_file, do_lower_case=True)(tf.constant(texts)).to_list()]
    session = operator_session(spm_model_file)
    for name, inputs in (("raw sentence", texts),
                         ("Python preprocess_text", [tokenization.preprocess_text(t, lower=True) for t in texts])):
        ids = operator_ids(session, inputs)
        equal = sum(a == b for a, b in zip(ids, reference))
        print(f"| {name} | {equal:,} / {len(texts):,} ({100 * equal / len(texts):.2f} %) |")
        for text, a, b in [(t, a, b) for t, a, b in zip(texts, ids, reference) if a != b][:3]:
            print(f"    differs: {text[:70]!r}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
