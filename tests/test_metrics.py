"""GLUE metrics against hand-computed values and the scikit-learn / SciPy definitions; result files."""
import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as sk

from albert_tf import metrics


def test_accuracy_and_loss_by_hand():
    labels = [0, 1, 1, 0, 1]
    predictions = [0, 1, 0, 0, 0]
    result = metrics.classification_metrics(labels, predictions,
                                            per_example_loss=[1.0, 2.0, 3.0, 4.0, 5.0])
    assert result == {"eval_accuracy": pytest.approx(0.6), "eval_loss": pytest.approx(3.0)}


def test_weights_leave_out_padding_examples():
    # The last example is padding: accuracy 3/4 over the first four, mean loss (1+2+3+4)/4.
    result = metrics.classification_metrics([0, 1, 1, 0, 1], [0, 1, 0, 0, 1],
                                            weights=[1, 1, 1, 1, 0],
                                            per_example_loss=[1.0, 2.0, 3.0, 4.0, 100.0])
    assert result["eval_accuracy"] == pytest.approx(0.75)
    assert result["eval_loss"] == pytest.approx(2.5)


def test_probabilities_use_argmax():
    probabilities = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]]
    result = metrics.classification_metrics([0, 2, 0], probabilities)
    assert result == {"eval_accuracy": pytest.approx(2 / 3)}


def test_cola_mcc_by_hand():
    # tp=2 fn=1 tn=2 fp=1: (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3.
    result = metrics.classification_metrics([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1], extra=("matthew_corr",))
    assert result["matthew_corr"] == pytest.approx(1 / 3)
    assert result["eval_accuracy"] == pytest.approx(4 / 6)


def test_cola_mcc_is_zero_when_undefined():
    # Constant predictions make the denominator 0; the original's div_no_nan gives 0.
    result = metrics.classification_metrics([1, 0, 1, 0], [1, 1, 1, 1], extra=("matthew_corr",))
    assert result["matthew_corr"] == 0.0


def test_f1_by_hand():
    # tp=2 fp=1 fn=1: precision 2/3, recall 2/3, F1 2/3.
    result = metrics.classification_metrics([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1], extra=("f1",))
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["eval_accuracy"] == pytest.approx(4 / 6)


def test_classification_matches_sklearn_on_random_arrays():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    probabilities = rng.random((200, 2))
    weights = (rng.random(200) > 0.1).astype(np.float32)
    keep = weights > 0
    predictions = probabilities.argmax(-1)
    cola = metrics.classification_metrics(labels, probabilities, weights, extra=("matthew_corr",))
    assert cola["matthew_corr"] == pytest.approx(sk.matthews_corrcoef(labels[keep], predictions[keep]))
    assert cola["eval_accuracy"] == pytest.approx(sk.accuracy_score(labels, predictions,
                                                                    sample_weight=weights))
    mrpc = metrics.classification_metrics(labels, probabilities, weights, extra=("f1",))
    assert mrpc["f1"] == pytest.approx(sk.f1_score(labels, predictions, sample_weight=weights))


def test_stsb_by_hand():
    # Ranks of [1, 3, 2, 4] vs [1, 2, 3, 4]: sum d^2 = 2, rho = 1 - 6*2 / (4*(16-1)) = 0.8.
    result = metrics.classification_metrics([1.0, 2.0, 3.0, 4.0], [[1.0], [3.0], [2.0], [4.0]],
                                            per_example_loss=[0.0, 1.0, 1.0, 0.0], is_regression=True)
    assert result["spearman"] == pytest.approx(0.8)
    # Pearson: both have mean 2.5, deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5):
    # covariance sum 2.25 - .25 - .25 + 2.25 = 4, variances 5 each -> 0.8.
    assert result["pearson"] == pytest.approx(0.8)
    assert result["MSE"] == pytest.approx(0.5)
    assert result["eval_loss"] == pytest.approx(0.5)
    assert "eval_accuracy" not in result


def test_stsb_matches_scipy_with_padding():
    rng = np.random.default_rng(1)
    labels = rng.random(50) * 5
    scores = labels + rng.normal(size=50)
    weights = np.ones(50)
    weights[-7:] = 0
    result = metrics.classification_metrics(labels, scores, weights, is_regression=True)
    assert result["pearson"] == pytest.approx(scipy.stats.pearsonr(scores[:43], labels[:43])[0])
    assert result["spearman"] == pytest.approx(scipy.stats.spearmanr(scores[:43], labels[:43])[0])
    assert result["MSE"] == pytest.approx(np.mean((scores[:43] - labels[:43]) ** 2))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(weights=[1, 0.5, 1]), "0 or 1"),
    (dict(weights=[0, 0, 0]), "No real example"),
    (dict(weights=[1, 1]), "weights has 2 entries"),
    (dict(per_example_loss=[1.0]), "1 per-example losses for 3 labels"),
])
def test_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.classification_metrics([0, 1, 1], [0, 1, 0], **kwargs)


def test_unknown_extra_metric():
    with pytest.raises(ValueError, match="Unknown metrics"):
        metrics.classification_metrics([0, 1], [0, 1], extra=("auc",))


def test_prediction_count_mismatch():
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        metrics.classification_metrics([0, 1, 1], [0, 1])


def test_merge_mismatched():
    merged = metrics.merge_mismatched({"eval_accuracy": 0.8, "eval_loss": 0.5},
                                      {"eval_accuracy": 0.7, "eval_loss": 0.6})
    assert merged == {"eval_accuracy": 0.8, "eval_loss": 0.5, "eval_accuracy_mismatched": 0.7,
                      "eval_loss_mismatched": 0.6}


def test_eval_results_file(tmp_path):
    path = str(tmp_path / "eval_results.txt")
    metrics.write_eval_results(path, {"global_step": 100, "eval_loss": 0.5, "eval_accuracy": 0.75},
                               best=-1)
    metrics.write_eval_results(path, {"global_step": 200, "eval_accuracy": 0.8, "eval_loss": 0.25},
                               best=0.75, append=True)
    with open(path) as f:
        assert f.read() == ("eval_accuracy = 0.75\neval_loss = 0.5\nglobal_step = 100\nbest = -1\n"
                            + "=" * 50 + "\n"
                            "eval_accuracy = 0.8\neval_loss = 0.25\nglobal_step = 200\nbest = 0.75\n"
                            + "=" * 50 + "\n")
    assert metrics.read_eval_results(path) == [
        {"eval_accuracy": 0.75, "eval_loss": 0.5, "global_step": 100.0, "best": -1.0},
        {"eval_accuracy": 0.8, "eval_loss": 0.25, "global_step": 200.0, "best": 0.75}]


def test_test_results_file(tmp_path):
    path = str(tmp_path / "test_results.tsv")
    metrics.write_test_results(path, np.array([[0.25, 0.75], [0.1, 0.9]]))
    with open(path) as f:
        assert f.read() == "0.25\t0.75\n0.1\t0.9\n"
    np.testing.assert_array_equal(metrics.read_test_results(path),
                                  np.array([[0.25, 0.75], [0.1, 0.9]], np.float32))
    metrics.write_test_results(path, [[3.5], [-1.25]])  # sts-b: the raw score
    with open(path) as f:
        assert f.read() == "3.5\n-1.25\n"
    assert metrics.read_test_results(path).shape == (2, 1)


def test_submit_results_file(tmp_path):
    path = str(tmp_path / "submit_results.tsv")
    metrics.write_submit_results(path, ["0", "1", "2"], [1, 0, 1], ["entailment", "not_entailment"])
    with open(path) as f:
        assert f.read() == "index\tprediction\n0\tnot_entailment\n1\tentailment\n2\tnot_entailment\n"
    assert metrics.read_submit_results(path) == [("0", "not_entailment"), ("1", "entailment"),
                                                 ("2", "not_entailment")]
    metrics.write_submit_results(path, ["7"], np.array([2.5], np.float32), [None])
    with open(path) as f:
        assert f.read() == "index\tprediction\n7\t2.5\n"


def test_submit_results_bad_header(tmp_path):
    path = tmp_path / "submit_results.tsv"
    path.write_text("id\tlabel\n0\t1\n")
    with pytest.raises(ValueError, match="header"):
        metrics.read_submit_results(str(path))


def test_submit_results_count_mismatch(tmp_path):
    with pytest.raises(ValueError, match="2 guids but 1 predictions"):
        metrics.write_submit_results(str(tmp_path / "s.tsv"), ["0", "1"], [1], ["0", "1"])
