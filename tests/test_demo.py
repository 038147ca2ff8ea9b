"""The README's main job, shrunk: the full pipeline from raw text to both checkpoint layouts."""
import json
import subprocess
import sys

import sentencepiece

import albert_tf
from albert_tf import demo
from albert_tf.demo import BUNDLED_CORPUS, SPECIAL_PIECES, DemoOptions, run_demo


def test_demo_pipeline_end_to_end(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        corpus.write_text(f.read()[:60000], encoding="utf-8")
    out = tmp_path / "demo"
    options = DemoOptions(output_dir=str(out), corpus=str(corpus), vocab_size=400, max_seq_length=32,
                          max_predictions_per_seq=5, dupe_factor=1, train_batch_size=8, num_train_steps=4,
                          num_evals=2)
    runs = []
    real_run = demo.driver.run
    monkeypatch.setattr(demo.driver, "run", lambda task, strategy: runs.append(task.settings) or real_run(task, strategy))
    # What albert-run-demo's runtime flags set reaches the pretraining run; the rest keeps the demo's choice.
    result = run_demo(options, runtime={"steps_per_loop": 3, "write_summaries": False})
    assert [(r.steps_per_loop, r.log_steps, r.write_summaries) for r in runs] == [(3, 4, False)]
    assert [r["global_step"] for r in result["eval"]] == [2, 4]
    assert (out / "model" / "tf2_checkpoints").is_dir()
    sp = sentencepiece.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert [sp.id_to_piece(i) for i in range(13)] == SPECIAL_PIECES
    config = albert_tf.AlbertConfig.from_json_file(str(out / "albert_config.json"))
    assert config.vocab_size == 400
    report = albert_tf.load_original_checkpoint(albert_tf.AlbertPretrainer(config), str(out / "model" / "model.ckpt-4"))
    assert report.ignored == ["global_step"]
    # The run folder itself is a valid --init_checkpoint / load path (its checkpoints are in model/).
    assert albert_tf.load_original_checkpoint(albert_tf.AlbertPretrainer(config), str(out)).loaded
    # The summary names every output relative to the output directory.
    summary = capsys.readouterr().out
    assert f"Outputs in {out}/:" in summary
    assert "\n  albert_config.json " in summary and str(tmp_path) not in summary.split("Outputs in")[1].split("\n", 1)[1]


_SCRIPT_WIRING = """
import json, sys
from albert_tf.scripts import run_demo as script
seen = {}
script.run_demo = lambda options, strategy, runtime: seen.update(runtime=runtime, output_dir=options.output_dir)
script.FLAGS(["albert-run-demo", "--output_dir=x", "--jit_compile", "--steps_per_loop=3", "--notensorboard",
              "--gradient_accumulation_steps=2"])
script.main([])
print(json.dumps(seen))
"""


def test_the_demo_script_hands_its_runtime_flags_to_the_run():
    out = subprocess.run([sys.executable, "-c", _SCRIPT_WIRING], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["output_dir"] == "x"
    assert seen["runtime"] == {"steps_per_loop": 3, "jit_compile": True, "eval_jit_compile": True,
                               "write_summaries": False, "gradient_accumulation_steps": 2, "recompute_grad": False,
                               "overwrite_output_dir": False}  # log_steps not given: the demo's own choice
