r"""TDD: text dataset distillation (Sucholutsky & Schonlau, "Soft-Label Dataset Distillation and Text Dataset
Distillation", IJCNN 2021).

Text is discrete, so sentences are embedded with fixed word embeddings and padded or truncated to one
length L: a sentence is then a one-channel "image" ``[1, L, E]`` (E the embedding size), and SLDD
(:mod:`~teachtheory.distill.sldd`) distils it like any image, learning the embedded sentences, their soft
labels and the step sizes. The distilled embeddings are read back as text by taking, at every position, the
nearest word of the vocabulary (:func:`nearest_tokens`).

Text sets:

* :func:`make_text_task`: a synthetic task for tests and demos: token sequences whose words are drawn from
  class-dependent distributions (each class prefers its own topic words over a shared background), with
  random sentence lengths, and fixed random word embeddings.
* :func:`load_token_files`: a user's text classification set as token-id files in a folder: ``train.txt``
  and ``test.txt`` with one example per line, ``LABEL<TAB>ID ID ID ...`` (non-negative integer labels and
  token ids; id 0 is the padding word), and optionally ``embedding.npy`` (float ``[V, E]``, row 0 the
  padding word) for the fixed embeddings (else random Gaussian ones of size 16, drawn with ``seed``).

Both become a :class:`~teachtheory.distill.data.DistillData` (:func:`text_dataset`) named ``text-synthetic``
or ``text:FOLDER``, which :func:`teachtheory.distill.distill` also accepts by name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data import DistillData
from .dd import _distil
from .synthetic import SyntheticSet

__all__ = ["TextCorpus", "is_text_dataset", "load_token_files", "make_text_task", "nearest_tokens", "resolve_dataset",
           "tdd", "text_dataset"]

SYNTHETIC = "text-synthetic"
_EMBEDDINGS: dict[str, torch.Tensor] = {}  # key in DistillData.meta -> the fixed embedding (not JSON-friendly)


@dataclass
class TextCorpus:
    """Token-id sequences with labels and a fixed embedding.

    Attributes:
        tokens_train, tokens_test: int64 ``[n, L]`` (0 pads); y_train, y_test: int64 ``[n]``.
        embedding: float32 ``[V, E]``, row 0 the padding word (zeros). name: the set's name. meta: provenance.
    """

    name: str
    tokens_train: torch.Tensor
    y_train: torch.Tensor
    tokens_test: torch.Tensor
    y_test: torch.Tensor
    embedding: torch.Tensor
    meta: dict


def make_text_task(*, num_classes: int = 4, vocab: int = 48, length: int = 12, train: int = 800, test: int = 400,
                   embed_dim: int = 12, topic_words: int = 6, topic_prob: float = 0.5, seed: int = 0) -> TextCorpus:
    """A synthetic text classification task (see the module docstring): class c's words come from its
    ``topic_words`` topic words with probability ``topic_prob``, else uniformly from the whole vocabulary.

    Raises:
        ValueError: sizes that do not fit (too small a vocabulary for the topics, non-positive sizes).
    """
    for name, value in (("num_classes", num_classes), ("vocab", vocab), ("length", length), ("train", train),
                        ("test", test), ("embed_dim", embed_dim), ("topic_words", topic_words)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if num_classes < 2 or vocab - 1 < num_classes * topic_words:
        raise ValueError(f"need num_classes >= 2 and vocab - 1 >= num_classes x topic_words "
                         f"({num_classes * topic_words}); got vocab={vocab}")
    if not 0 < topic_prob <= 1:
        raise ValueError(f"topic_prob must be in (0, 1], got {topic_prob!r}")
    gen = torch.Generator().manual_seed(seed)
    words = torch.arange(1, vocab)  # 0 is padding
    topics = words[torch.randperm(vocab - 1, generator=gen)[: num_classes * topic_words]].view(num_classes, -1)
    probs = torch.full((num_classes, vocab), (1 - topic_prob) / (vocab - 1))
    probs[:, 0] = 0.0
    probs.scatter_add_(1, topics, torch.full(topics.shape, topic_prob / topic_words))

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=gen)]
        tokens = torch.multinomial(probs[y], length, replacement=True, generator=gen)
        lengths = torch.randint(length // 2, length + 1, (n,), generator=gen)
        tokens[torch.arange(length)[None, :] >= lengths[:, None]] = 0
        return tokens, y

    tokens_train, y_train = draw(train)
    tokens_test, y_test = draw(test)
    embedding = torch.randn(vocab, embed_dim, generator=gen)
    embedding[0] = 0.0
    meta = {"source": "synthetic token sequences with class-dependent word distributions", "seed": seed,
            "vocab": vocab, "length": length, "topic_words": topic_words, "topic_prob": topic_prob}
    return TextCorpus(SYNTHETIC, tokens_train, y_train, tokens_test, y_test, embedding, meta)


def _read_split(path: Path) -> tuple[list[list[int]], list[int]]:
    if not path.is_file():
        raise FileNotFoundError(f"text set: {str(path)!r} not found (need train.txt and test.txt, lines "
                                "'LABEL<TAB>ID ID ...')")
    seqs, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        label, sep, rest = line.partition("\t")
        try:
            y = int(label)
            ids = [int(t) for t in rest.split()]
        except ValueError:
            raise ValueError(f"{str(path)!r} line {number}: expected 'LABEL<TAB>ID ID ...' with integers, "
                             f"got {line[:60]!r}") from None
        if not sep or not ids:
            raise ValueError(f"{str(path)!r} line {number}: expected 'LABEL<TAB>ID ID ...' (a tab, then at least "
                             "one token id)")
        if y < 0 or min(ids) < 0:
            raise ValueError(f"{str(path)!r} line {number}: labels and token ids must be non-negative")
        seqs.append(ids)
        labels.append(y)
    if not seqs:
        raise ValueError(f"{str(path)!r} holds no examples")
    return seqs, labels


def load_token_files(folder: str | Path, *, length: int | None = None, embed_dim: int = 16, seed: int = 0
                     ) -> TextCorpus:
    """A user's text classification set from token-id files (see the module docstring).

    Args:
        folder: holds ``train.txt``, ``test.txt`` and optionally ``embedding.npy``.
        length: pad/truncate to this many tokens (default: the longest training sequence).
        embed_dim, seed: the random fixed embedding when the folder has none.

    Raises:
        FileNotFoundError: a missing folder or split file. ValueError: a malformed line, negative ids, labels
        that are not 0..K-1 with every class in the training split, token ids beyond the embedding, a bad
        embedding file.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"text set folder {str(folder)!r} does not exist")
    train, y_train = _read_split(folder / "train.txt")
    test, y_test = _read_split(folder / "test.txt")
    K = max(y_train) + 1
    if sorted(set(y_train)) != list(range(K)):
        raise ValueError(f"training labels must be 0..K-1 with every class present; got {sorted(set(y_train))}")
    if max(y_test) >= K:
        raise ValueError(f"test label {max(y_test)} does not occur in the training split (classes 0..{K - 1})")
    top = max(max(max(s) for s in train), max(max(s) for s in test))
    emb_path = folder / "embedding.npy"
    if emb_path.exists():
        try:
            embedding = torch.from_numpy(np.load(emb_path, allow_pickle=False)).float()
        except (OSError, ValueError) as exc:
            raise ValueError(f"{str(emb_path)!r} is not a float array file: {exc}") from None
        if embedding.dim() != 2 or not torch.isfinite(embedding).all():
            raise ValueError(f"{str(emb_path)!r} must be a finite float array [V, E], got shape "
                             f"{tuple(embedding.shape)}")
        if top >= embedding.shape[0]:
            raise ValueError(f"token id {top} is beyond the embedding's {embedding.shape[0]} rows")
        source = "embedding.npy"
    else:
        if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 1:
            raise ValueError(f"embed_dim must be a positive integer, got {embed_dim!r}")
        embedding = torch.randn(top + 1, embed_dim, generator=torch.Generator().manual_seed(seed))
        embedding[0] = 0.0
        source = f"random Gaussian, seed {seed}"
    if length is None:
        length = max(len(s) for s in train)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")

    def pad(seqs: list[list[int]]) -> torch.Tensor:
        out = torch.zeros(len(seqs), length, dtype=torch.long)
        for i, s in enumerate(seqs):  # reading files: one row per example, done once
            s = s[:length]
            out[i, : len(s)] = torch.tensor(s)
        return out

    meta = {"source": f"token-id files in {str(folder)!r}", "embedding": source, "length": length}
    return TextCorpus(f"text:{folder}", pad(train), torch.tensor(y_train), pad(test), torch.tensor(y_test), embedding,
                      meta)


def text_dataset(corpus: TextCorpus) -> DistillData:
    """Embed a corpus into a :class:`DistillData` of one-channel "images" ``[n, 1, L, E]``, normalised with the
    training split's mean and std; the embedding is kept for :func:`nearest_tokens`."""
    emb = corpus.embedding.float()
    x_train, x_test = emb[corpus.tokens_train][:, None], emb[corpus.tokens_test][:, None]
    mean, std = x_train.mean(), x_train.std().clamp_min(1e-12)
    key = hashlib.sha1(emb.numpy().tobytes()).hexdigest()[:16]
    _EMBEDDINGS[key] = emb
    meta = dict(corpus.meta, kind="text", embedding_key=key, vocab=int(emb.shape[0]), train_size=int(x_train.shape[0]),
                test_size=int(x_test.shape[0]), normalisation="one channel, training-split mean and std")
    K = int(max(corpus.y_train.max(), corpus.y_test.max())) + 1
    return DistillData(corpus.name, (x_train - mean) / std, corpus.y_train.long(), (x_test - mean) / std,
                       corpus.y_test.long(), K, mean.view(1), std.view(1), meta)


def is_text_dataset(name) -> bool:
    """True for the names :func:`resolve_dataset` reads: ``text-synthetic`` or ``text:FOLDER``."""
    return isinstance(name, str) and (name == SYNTHETIC or name.startswith("text:"))


def resolve_dataset(name: str) -> DistillData:
    """The text set named ``text-synthetic`` (:func:`make_text_task` defaults) or ``text:FOLDER`` (token files).

    Raises:
        ValueError: any other name.
    """
    if not is_text_dataset(name):
        raise ValueError(f"a text data set is 'text-synthetic' or 'text:FOLDER', got {name!r}")
    return text_dataset(make_text_task() if name == SYNTHETIC else load_token_files(name[len("text:"):]))


def nearest_tokens(images: torch.Tensor, data: DistillData) -> torch.Tensor:
    """Read distilled sentence embeddings ``[M, 1, L, E]`` back as token ids ``[M, L]``: the nearest word
    (Euclidean, in embedding units) at every position.

    Raises:
        ValueError: ``data`` is not a text set made by :func:`text_dataset` in this process.
    """
    key = data.meta.get("embedding_key")
    if data.meta.get("kind") != "text" or key not in _EMBEDDINGS:
        raise ValueError(f"data set {data.name!r} is not a text set made by text_dataset in this process")
    emb = _EMBEDDINGS[key].to(images.device)
    raw = data.denormalise(images.detach().float())[:, 0]  # [M, L, E]
    dist = torch.cdist(raw.reshape(-1, raw.shape[-1]), emb)
    return dist.argmin(1).view(raw.shape[0], raw.shape[1]).cpu()


def tdd(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, size: int | None = None,
        learn_labels: bool = True, net: str = "convnet", width: int | None = 32, gd_steps: int = 1, epochs: int = 1,
        init: str = "random", runs: int = 4, image_init: str = "noise", batch_real: int = 256, lr_img: float = 0.01,
        lr_label: float = 0.05, lr_lr: float = 0.01, lr_init: float = 0.1, unroll: str = "reverse",
        checkpoint_every: int | None = None, **_) -> SyntheticSet:
    """Text dataset distillation: SLDD (or DD with ``learn_labels=False``) on embedded sentences, with the
    distilled sentences read back as words (``provenance["tokens"]``).

    Raises:
        ValueError: ``data`` is not a text set (use ``text-synthetic``, ``text:FOLDER`` or :func:`text_dataset`).
    """
    if data.meta.get("kind") != "text":
        raise ValueError(f"tdd distils text sets (dataset 'text-synthetic', 'text:FOLDER' or text_dataset(...)); "
                         f"got the image set {data.name!r}")
    syn = _distil(data, ipc, "tdd", learn_labels, size, steps=steps, seed=seed, progress=progress, net=net,
                  width=width, gd_steps=gd_steps, epochs=epochs, init=init, runs=runs, image_init=image_init,
                  batch_real=batch_real, lr_img=lr_img, lr_lr=lr_lr, lr_init=lr_init, unroll=unroll,
                  checkpoint_every=checkpoint_every, lr_label=lr_label)
    if data.meta.get("embedding_key") in _EMBEDDINGS:
        syn.provenance["tokens"] = nearest_tokens(syn.images, data).tolist()
    return syn
