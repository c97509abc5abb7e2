"""Compact transformer encoder with two classification heads (intent, willingness).

By default the encoder is a small `BertConfig` trained from scratch on a character
vocabulary (Chinese is written without spaces, so characters are the natural unit and need
no pretrained tokenizer). `init_from` lets training start from any local `transformers`
checkpoint instead (its own tokenizer is then used); nothing is ever downloaded.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nlp.textproc import augment, normalize

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = (PAD, UNK, CLS, SEP)
MAX_LEN = 96  # characters seen by the encoder; utterances are short, long texts are clipped


class CharTokenizer:
    """One id per character of the normalised text; unknown characters map to [UNK]."""

    def __init__(self, chars: Sequence[str]) -> None:
        self.itos = list(SPECIALS) + [c for c in chars if c not in SPECIALS]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, max_len: int = MAX_LEN) -> list[int]:
        unk = self.stoi[UNK]
        body = [self.stoi.get(c, unk) for c in normalize(text).replace(" ", "")][: max_len - 2]
        return [self.stoi[CLS], *body, self.stoi[SEP]]

    def batch(self, texts: Sequence[str], max_len: int = MAX_LEN) -> dict[str, torch.Tensor]:
        seqs = [self.encode(t, max_len) for t in texts]
        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"chars": self.itos[len(SPECIALS) :]}, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> CharTokenizer:
        return cls(json.loads(path.read_text())["chars"])


class HFTokenizer:
    """Adapter giving a pretrained checkpoint's tokenizer the CharTokenizer `batch` interface."""

    def __init__(self, tok) -> None:  # noqa: ANN001 - any transformers tokenizer
        self.tok = tok

    def batch(self, texts: Sequence[str], max_len: int = MAX_LEN) -> dict[str, torch.Tensor]:
        enc = self.tok(
            [normalize(t) for t in texts],
            padding=True,
            truncation=True,
            max_length=max_len,
            return_tensors="pt",
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


class DualHead(nn.Module):
    """Encoder + masked mean pooling + one linear head per label set."""

    def __init__(self, encoder: nn.Module, hidden: int, n_intent: int, n_will: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        self.intent = nn.Linear(hidden, n_intent)
        self.willingness = nn.Linear(hidden, n_will)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.intent(pooled), self.willingness(pooled)


@dataclass
class TrainConfig:
    layers: int = 2
    hidden: int = 128
    heads: int = 4
    intermediate: int = 256
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    aug_prob: float = 0.5
    unk_prob: float = 0.03
    label_smoothing: float = 0.1
    will_weight: float = 0.7
    seed: int = 13
    common_chars: int = 3000
    init_from: str | None = None


def common_cjk_chars(limit: int) -> list[str]:
    """The `limit` most frequent CJK characters by jieba's bundled word frequencies (offline)."""
    import os

    import jieba

    path = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
    freq: Counter[str] = Counter()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(" ")
            if len(parts) < 2:
                continue
            word, count = parts[0], int(parts[1])
            for ch in word:
                if "\u4e00" <= ch <= "\u9fff":
                    freq[ch] += count
    return [c for c, _ in freq.most_common(limit)]


class TransformerClassifier:
    """Inference wrapper: batches texts, returns raw logits for both heads."""

    def __init__(self, model: DualHead, tokenizer, labels: dict[str, list[str]]) -> None:  # noqa: ANN001
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = labels

    @torch.inference_mode()
    def logits(self, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        outs_i, outs_w = [], []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer.batch(texts[start : start + batch_size])
            li, lw = self.model(**enc)
            outs_i.append(li.float().numpy())
            outs_w.append(lw.float().numpy())
        return {"intent": np.concatenate(outs_i), "willingness": np.concatenate(outs_w)}

    def save(self, directory: Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        self.model.encoder.config.to_json_file(str(directory / "config.json"))
        state = {
            k: v.detach().to(torch.float16).contiguous() for k, v in self.model.state_dict().items()
        }
        save_file(state, str(directory / "model.safetensors"))
        if isinstance(self.tokenizer, CharTokenizer):
            self.tokenizer.save(directory / "char_vocab.json")
            kind = "char"
        else:
            self.tokenizer.tok.save_pretrained(str(directory))
            kind = "pretrained"
        meta = {"labels": self.labels, "tokenizer": kind, **(extra or {})}
        (directory / "heads.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, directory: Path) -> TransformerClassifier:
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        meta = json.loads((directory / "heads.json").read_text())
        config = AutoConfig.from_pretrained(str(directory), local_files_only=True)
        encoder = AutoModel.from_config(config)
        labels = meta["labels"]
        model = DualHead(
            encoder, config.hidden_size, len(labels["intent"]), len(labels["willingness"])
        )
        state = {k: v.float() for k, v in load_file(str(directory / "model.safetensors")).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if ".pooler." not in k]  # pooler unused, not saved
        if missing or unexpected:
            raise RuntimeError(f"{directory}: weights do not match config: {missing or unexpected}")
        if meta["tokenizer"] == "char":
            tok = CharTokenizer.load(directory / "char_vocab.json")
        else:
            from transformers import AutoTokenizer

            tok = HFTokenizer(AutoTokenizer.from_pretrained(str(directory), local_files_only=True))
        return cls(model, tok, labels)


def _build(cfg: TrainConfig, texts: Sequence[str], labels: dict[str, list[str]]):  # noqa: ANN202
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    if cfg.init_from:
        tok = HFTokenizer(AutoTokenizer.from_pretrained(cfg.init_from, local_files_only=True))
        encoder = AutoModel.from_pretrained(cfg.init_from, local_files_only=True)
        hidden = encoder.config.hidden_size
        return DualHead(encoder, hidden, len(labels["intent"]), len(labels["willingness"])), tok
    corpus_chars = Counter(c for t in texts for c in normalize(t).replace(" ", ""))
    chars = sorted(corpus_chars) + [
        c for c in common_cjk_chars(cfg.common_chars) if c not in corpus_chars
    ]
    tok = CharTokenizer(chars)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=MAX_LEN + 2,
        type_vocab_size=1,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pad_token_id=0,
    )
    encoder = BertModel(config, add_pooling_layer=False)
    return DualHead(encoder, cfg.hidden, len(labels["intent"]), len(labels["willingness"])), tok


def train_transformer(
    texts: Sequence[str],
    targets: dict[str, Sequence[str]],
    labels: dict[str, list[str]],
    cfg: TrainConfig,
    progress: Callable[[str], None] | None = None,
) -> TransformerClassifier:
    """Train both heads jointly; each epoch sees a fresh random augmentation of the corpus."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model, tok = _build(cfg, texts, labels)
    rng = random.Random(cfg.seed)
    yi = torch.tensor([labels["intent"].index(v) for v in targets["intent"]])
    yw = torch.tensor([labels["willingness"].index(v) for v in targets["willingness"]])
    n_i, n_w = len(labels["intent"]), len(labels["willingness"])
    noise = "".join(tok.itos[len(SPECIALS) :]) if isinstance(tok, CharTokenizer) else ""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(_length_bucketed(texts, cfg.batch_size, random.Random(0)))
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(0.06 * total))

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        frac = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_i = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, weight=_balanced(yi, n_i))
    loss_w = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing, weight=_balanced(yw, n_w))
    unk_id = tok.stoi[UNK] if isinstance(tok, CharTokenizer) else None
    step = 0
    t0 = time.time()
    model.train()
    for epoch in range(cfg.epochs):
        batches = _length_bucketed(texts, cfg.batch_size, rng)
        running = 0.0
        for b, idx in enumerate(batches):
            batch_texts = [
                augment(texts[i], rng, noise) if rng.random() < cfg.aug_prob else texts[i]
                for i in idx
            ]
            enc = tok.batch(batch_texts)
            if unk_id is not None and cfg.unk_prob > 0:
                ids = enc["input_ids"]
                drop = (torch.rand(ids.shape) < cfg.unk_prob) & (ids > SEP_ID)
                enc["input_ids"] = ids.masked_fill(drop, unk_id)
            li, lw = model(**enc)
            loss = loss_i(li, yi[idx]) + cfg.will_weight * loss_w(lw, yw[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running += loss.detach().item()
            if progress and (b + 1) % 20 == 0:
                progress(
                    f"transformer epoch {epoch + 1}/{cfg.epochs} step {b + 1}/{steps_per_epoch} "
                    f"loss {running / (b + 1):.3f} {time.time() - t0:.0f}s"
                )
    model.eval()
    return TransformerClassifier(model, tok, labels)


SEP_ID = SPECIALS.index(SEP)


def _length_bucketed(texts: Sequence[str], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding → faster CPU steps)."""
    order = list(range(len(texts)))
    rng.shuffle(order)
    chunk = batch_size * 16
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: len(texts[i]))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _balanced(y: torch.Tensor, n: int) -> torch.Tensor:
    """sklearn-style 'balanced' class weights (absent classes get weight 1)."""
    counts = torch.bincount(y, minlength=n).float()
    w = torch.where(counts > 0, len(y) / (n * counts.clamp(min=1)), torch.ones_like(counts))
    present = counts > 0
    return w / w[present].mean()


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
