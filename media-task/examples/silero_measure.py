#!/usr/bin/env python3
"""Measures Silero VAD on the audio that `vad_measure` dumps, the way `vad_measure`
measures earshot: frame-level precision, recall and F1 per condition (clean, 20 dB and
10 dB SNR), and CPU time per 20 ms of 8 kHz audio on one thread.

Silero is not a dependency of Parley; this script exists so that it can be compared
with earshot on exactly the same audio and labels. It runs the ONNX model shipped in
the PyPI wheel `silero-vad` directly with onnxruntime (no torch), reproducing the
wheel's own `OnnxWrapper`: float samples in [-1, 1), 256-sample windows at 8 kHz (512
at 16 kHz), each with the previous window's last 32 samples (64 at 16 kHz) prepended
as context (zeros before the first), the recurrent state (2, 1, 128) carried from
window to window, the last window padded with zeros.

Scoring, as in `vad_measure.rs`:
  * a millisecond's truth is its label in `<name>.labels` (one 0/1 a millisecond);
  * a detector frame is speech in truth when most of its milliseconds are labelled
    speech (ties are silence), and frames running past the labels are skipped;
  * a frame is judged speech when its probability is >= the threshold (as earshot's
    frames are, and as Silero's own `VADIterator` does);
  * precision = tp / (tp + fp), recall = tp / (tp + fn), F1 their harmonic mean.
Silero's windows are 32 ms at both rates. They are scored two ways: on 20 ms frames
(the energy baseline's frames: frame i covers ms 20i..20i+20 and takes the probability
of the window that holds its middle millisecond, 20i+10, so the window covering most
of it), and on Silero's own 32 ms windows (as earshot is scored on its 16 ms frames).
Alongside 0.5 (Silero's default) and the thresholds `vad_measure` prints for earshot,
it reports the threshold that maximises F1 in each condition and the single threshold
that maximises the mean F1 of the three.

CPU: the whole of `snr10.wav` fed window by window (the Python loop, the numpy
preparation and `session.run`), timed with `time.process_time`, best of `--runs`,
divided by the number of 20 ms frames in the file (rounded up, as `vad_measure` counts
its 20 ms chunks). onnxruntime runs with one intra-op and one inter-op thread. At
16 kHz the 8 -> 16 kHz resampling (windowed sinc here, in numpy) is not timed.

Run (there is no torch anywhere; `--no-deps` keeps pip from fetching it):

    cargo run --release -p parley-media --example vad_measure -- --dump /tmp/vad-dump
    python3 -m venv /tmp/silero-venv
    /tmp/silero-venv/bin/pip install onnxruntime numpy
    /tmp/silero-venv/bin/pip install --no-deps silero-vad
    /tmp/silero-venv/bin/python media-task/examples/silero_measure.py /tmp/vad-dump

Options: `--model PATH` (default: `silero_vad/data/silero_vad.onnx` from the installed
wheel, found without importing the package, which needs torch), `--rate 8000|16000|both`
(default both), `--runs N` (default 5).
"""

import argparse
import importlib.metadata
import importlib.util
import math
import os
import platform
import sys
import time
import wave

import numpy as np
import onnxruntime as ort

CONDITIONS = ("clean", "snr20", "snr10")
DUMP_RATE = 8000
FRAME_MS = 20
THRESHOLDS = (0.3, 0.5, 0.6, 0.7)
SEARCH = [round(0.01 * i, 2) for i in range(1, 100)]


def packaged_model():
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("silero-vad is not installed: pip install --no-deps silero-vad")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")


def read_condition(folder, name):
    with wave.open(os.path.join(folder, f"{name}.wav"), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, "16-bit mono expected"
        assert w.getframerate() == DUMP_RATE, "the dump is at 8 kHz"
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    with open(os.path.join(folder, f"{name}.labels")) as f:
        labels = np.array([c == "1" for c in f.read().strip()], dtype=bool)
    return audio, labels


def upsample_2x(audio):
    """8 -> 16 kHz: zero-stuffing and a Kaiser-windowed sinc low-pass at 3.9 kHz
    (255 taps), its delay removed so that sample 2n of the output is sample n."""
    taps = 255
    centre = taps // 2
    n = np.arange(taps) - centre
    cutoff = 3900.0 / 16000.0
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 10.0)
    h *= 2.0 / h.sum()
    stuffed = np.zeros(2 * len(audio), dtype=np.float64)
    stuffed[::2] = audio
    return np.convolve(stuffed, h)[centre : centre + len(stuffed)].astype(np.float32)


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def probabilities(sess, samples, rate):
    """One probability per window of `samples` (float32 in [-1, 1)), as the wheel's
    OnnxWrapper computes them."""
    window = 512 if rate == 16000 else 256
    context_size = 64 if rate == 16000 else 32
    if len(samples) % window:
        samples = np.concatenate([samples, np.zeros(window - len(samples) % window, np.float32)])
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, context_size), dtype=np.float32)
    sr = np.array(rate, dtype=np.int64)
    out = np.empty(len(samples) // window, dtype=np.float32)
    for i in range(len(out)):
        x = np.concatenate([context, samples[None, i * window : (i + 1) * window]], axis=1)
        p, state = sess.run(None, {"input": x, "state": state, "sr": sr})
        out[i] = p[0, 0]
        context = x[:, -context_size:]
    return out


def window_frames(probs, window_ms):
    """(start ms, duration ms, probability) for each of Silero's own windows."""
    return [(i * window_ms, window_ms, float(p)) for i, p in enumerate(probs)]


def twenty_ms_frames(probs, window_ms, labels):
    """(start ms, 20, probability) for each whole 20 ms frame, taking the window that
    holds the frame's middle millisecond."""
    frames = []
    for i in range(len(labels) // FRAME_MS):
        start = i * FRAME_MS
        w = min((start + FRAME_MS // 2) // window_ms, len(probs) - 1)
        frames.append((start, FRAME_MS, float(probs[w])))
    return frames


def truths(frames, labels):
    """Per frame: speech by the majority of its milliseconds; None past the labels."""
    out = []
    for at, dur, _ in frames:
        if at + dur > len(labels):
            out.append(None)
            continue
        ms = labels[at : at + dur]
        out.append(int(ms.sum()) * 2 > len(ms))
    return out


def score(frames, truth, threshold):
    tp = fp = fn = 0
    for (_, _, p), t in zip(frames, truth):
        if t is None:
            continue
        speech = p >= threshold
        if speech and t:
            tp += 1
        elif speech:
            fp += 1
        elif t:
            fn += 1
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, sys.float_info.epsilon)
    return precision, recall, f1


def cpu_per_20ms(sess, samples, rate, runs, frames_20ms):
    best = math.inf
    for _ in range(runs):
        start = time.process_time()
        probabilities(sess, samples, rate)
        best = min(best, time.process_time() - start)
    return best * 1e6 / frames_20ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", nargs="?", default="/tmp/vad-dump", help="vad_measure's --dump folder")
    parser.add_argument("--model", default=None, help="the Silero ONNX model")
    parser.add_argument("--rate", choices=("8000", "16000", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    model = args.model or packaged_model()
    rates = [8000, 16000] if args.rate == "both" else [int(args.rate)]
    try:
        silero_version = importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        silero_version = "not installed"
    print(f"model: {model} ({os.path.getsize(model):,} bytes)")
    print(
        f"silero-vad {silero_version}, onnxruntime {ort.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(f"machine: {machine()}, {os.cpu_count()} cores")

    sess = session(model)
    data = {name: read_condition(args.dump, name) for name in CONDITIONS}

    for rate in rates:
        window_ms = 32  # 256 samples at 8 kHz, 512 at 16 kHz
        scored = {}  # (framing, condition) -> (frames, truth)
        for name, (audio, labels) in data.items():
            samples = audio.astype(np.float32) / 32768.0
            if rate == 16000:
                samples = upsample_2x(samples)
            probs = probabilities(sess, samples, rate)
            for framing, frames in (
                ("20 ms", twenty_ms_frames(probs, window_ms, labels)),
                ("32 ms", window_frames(probs, window_ms)),
            ):
                scored[(framing, name)] = (frames, truths(frames, labels))

        print(f"\nSilero at {rate // 1000} kHz" + (" (resampled from 8 kHz)" if rate == 16000 else ""))
        print(f"{'detector':<36} {'audio':>6} {'precision':>9} {'recall':>7} {'F1':>6}")
        for framing in ("20 ms", "32 ms"):
            f1_by_threshold = {
                t: [score(*scored[(framing, n)], t)[2] for n in CONDITIONS] for t in SEARCH
            }
            overall = max(SEARCH, key=lambda t: (sum(f1_by_threshold[t]), -abs(t - 0.5)))
            for name in CONDITIONS:
                frames, truth = scored[(framing, name)]
                best = max(SEARCH, key=lambda t: (score(frames, truth, t)[2], -abs(t - 0.5)))
                rows = [(f"p>={t}", t) for t in THRESHOLDS]
                rows.append((f"p>={overall} (best mean F1)", overall))
                rows.append((f"p>={best} (best here)", best))
                for label, t in rows:
                    p, r, f = score(frames, truth, t)
                    print(f"{'silero ' + framing + ' ' + label:<36} {name:>6} {p:>9.3f} {r:>7.3f} {f:>6.3f}")

    audio, _ = data["snr10"]
    frames_20ms = math.ceil(len(audio) / (DUMP_RATE * FRAME_MS // 1000))
    samples_8k = audio.astype(np.float32) / 32768.0
    print(f"\nCPU, one thread, per 20 ms of 8 kHz audio (snr10, best of {args.runs}, process time):")
    for rate in rates:
        samples = samples_8k if rate == 8000 else upsample_2x(samples_8k)
        us = cpu_per_20ms(sess, samples, rate, args.runs, frames_20ms)
        note = "" if rate == 8000 else " (resampling not counted)"
        print(f"  silero at {rate // 1000} kHz, whole loop:        {us:.2f} µs{note}")
    # The Python side of the loop alone (no session.run), to show what of the above
    # a caller in Rust would not pay.
    best = math.inf
    for _ in range(args.runs):
        start = time.process_time()
        context = np.zeros((1, 32), dtype=np.float32)
        state = np.zeros((2, 1, 128), dtype=np.float32)
        sr = np.array(8000, dtype=np.int64)
        for i in range(len(samples_8k) // 256):
            x = np.concatenate([context, samples_8k[None, i * 256 : (i + 1) * 256]], axis=1)
            _ = {"input": x, "state": state, "sr": sr}
            context = x[:, -32:]
        best = min(best, time.process_time() - start)
    print(f"    of which the Python loop without session.run: {best * 1e6 / frames_20ms:.2f} µs")


if __name__ == "__main__":
    main()
