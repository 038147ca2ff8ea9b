"""An independent numpy implementation of the original ALBERT forward pass, written from
`original_release.md` §1 (not from albert_tf), used to check the model on arbitrary configurations.

`weights` maps official TF1 variable names to arrays.
"""
import math

import numpy as np


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACT = {"gelu": gelu, "relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh, "linear": lambda x: x}


def layer_norm(x, w, scope):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]


def dense(x, w, scope, act=None):
    y = x @ w[f"{scope}/kernel"]
    if f"{scope}/bias" in w:
        y = y + w[f"{scope}/bias"]
    return act(y) if act else y


def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def forward(cfg, w, ids, mask, types, positions=None):
    """Returns dict like the original getters; float64 throughout."""
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    L, G, K = cfg["num_hidden_layers"], cfg["num_hidden_groups"], cfg["inner_group_num"]
    H, N = cfg["hidden_size"], cfg["num_attention_heads"]
    D = H // N
    act = ACT[cfg["hidden_act"]]
    B, S = ids.shape
    e = w["bert/embeddings/word_embeddings"][ids] + w["bert/embeddings/token_type_embeddings"][types]
    e = e + w["bert/embeddings/position_embeddings"][:S][None]
    emb = layer_norm(e, w, "bert/embeddings/LayerNorm")
    x = emb
    if "bert/encoder/embedding_hidden_mapping_in/kernel" in w:
        x = dense(x, w, "bert/encoder/embedding_hidden_mapping_in")
    adder = (1.0 - mask[:, None, None, :].astype(np.float64)) * -10000.0
    layers = []
    for i in range(L):
        g = int(i / L * G)
        for k in range(K):
            s = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
            q, kk, v = (dense(x, w, f"{s}/attention_1/self/{n}").reshape(B, S, N, D).transpose(0, 2, 1, 3)
                        for n in ("query", "key", "value"))
            probs = softmax(q @ kk.transpose(0, 1, 3, 2) / math.sqrt(D) + adder)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
            y = layer_norm(x + dense(ctx, w, f"{s}/attention_1/output/dense"), w, f"{s}/LayerNorm")
            ffn = dense(dense(y, w, f"{s}/ffn_1/intermediate/dense", act), w, f"{s}/ffn_1/intermediate/output/dense")
            x = layer_norm(y + ffn, w, f"{s}/LayerNorm_1")
            layers.append(x)
    pooled = np.tanh(dense(x[:, 0], w, "bert/pooler/dense"))
    out = {"embedding_output": emb, "sequence_output": x, "pooled_output": pooled, "encoder_outputs": layers}
    if positions is not None and "cls/predictions/output_bias" in w:
        h = np.take_along_axis(x, positions[..., None], axis=1)
        h = layer_norm(dense(h, w, "cls/predictions/transform/dense", act), w, "cls/predictions/transform/LayerNorm")
        out["mlm_logits"] = h @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
        out["sop_logits"] = pooled @ w["cls/seq_relationship/output_weights"].T + w["cls/seq_relationship/output_bias"]
    return out
