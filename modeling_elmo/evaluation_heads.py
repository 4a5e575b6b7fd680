"""The task heads of `elmo evaluate` and their training loop on the frozen biLM's cached layers.

A head is `ElmoForTokenClassification` or `ElmoForSequenceClassification` built from a copy of the biLM's config with
the task fields (`head_config`); only its `classify_layers` is used, fed with cached layers (`collate`), so its own
biLM keeps its random weights and stays frozen. `train_head` trains it with Adam (the mix's s and γ in their own
parameter group, `parameter_groups`) and scores its accuracy on the test items.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence

import torch
from torch import nn

from .modeling_elmo import TOKEN_IGNORE_INDEX, ElmoBiLstm, ElmoTokenEmbedder

# ---------------------------------------------------------------------------------------------------------------
# Task heads

HEADS = {"token": "ElmoForTokenClassification", "sequence": "ElmoForSequenceClassification"}


def head_config(
    bilm_config,
    num_labels: int,
    encoder: str,
    hidden_size: int,
    regularization: float,
    dropout: float,
    layer_norm: bool = False,
):
    """A copy of the biLM's config with the task fields the heads read: `task_encoder` ("lstm": one BiLSTM layer of
    `hidden_size` per direction; "none"), λ, `dropout` on the mix and on the classifier's input, and the mix's layer
    norm (`scalar_mix_layer_norm`, the paper's option, as AllenNLP's `do_layer_norm`).

    The biLM's layers differ in scale: the context-free layer 0 (the char-CNN's projection, unclipped) has a
    standard deviation 3 to 6 times that of the biLSTM layers (clipped to ±3), and the PPMI-SVD vectors have unit
    RMS. The layer norm (one mean and variance over the batch's words per layer) removes that, but is off by
    default, measured with the full sizes: BiLSTM POS tagger on layer 0 84.0 → 84.2% (weak smoke model) and 96.0 →
    96.1% (checkpoint), on the mix 83.7 → 81.7% and 96.2 → 96.1%; BBC mix (λ = 0.001, seeds 0/1) 72.2/73.2 →
    66.1/68.7%. The gap between the tagger on a weak model's layers and on PPMI-SVD vectors is the weak model,
    not the scale (it underfits: training loss 0.54 after 5 epochs); on a better-trained biLM the same tagger on
    layer 0 or on the mix beats the PPMI-SVD tagger."""
    config = copy.deepcopy(bilm_config)
    config.num_labels = num_labels
    config.task_encoder = encoder
    config.task_encoder_hidden_size = hidden_size
    config.task_encoder_layers = 1
    config.scalar_mix_regularization = regularization
    config.scalar_mix_dropout = dropout
    config.classifier_dropout = dropout
    config.scalar_mix_layer_norm = layer_norm
    config.freeze_elmo = True
    return config


def build_head(kind: str, config, seed: int, device: str | torch.device = "cpu") -> nn.Module:
    """`ElmoForTokenClassification` (kind "token") or `ElmoForSequenceClassification` ("sequence"), initialised
    under `seed`. The biLM inside the head keeps its random weights and stays frozen: only cached layers are fed to
    `classify_layers`."""
    from . import modeling_elmo as modeling

    torch.manual_seed(seed)
    head = getattr(modeling, HEADS[kind])(config).to(device)
    for module in head.modules():
        if isinstance(module, (ElmoTokenEmbedder, ElmoBiLstm)):
            module.requires_grad_(False)
    return head


def task_parameters(head: nn.Module) -> list[nn.Parameter]:
    return [parameter for parameter in head.parameters() if parameter.requires_grad]


def parameter_groups(head: nn.Module, learning_rate: float, mix_learning_rate: float) -> list[dict]:
    """Adam's parameter groups: the scalar mix's s and γ at `mix_learning_rate`, the task encoder and classifier at
    `learning_rate`; no weight decay anywhere (the only penalty on s is the paper's λ‖s‖², in the loss).

    s is a vector of logits: a weight of 0.5 against 0.25 is a difference of ~0.7 in s, and γ is of order 1, while
    Adam moves a parameter by about its learning rate per step. At the encoder's rate (10⁻³) a few hundred steps
    move s by a few hundredths, so every mix stayed at uniform whatever λ was (the paper's λ comparison then
    compares nothing). A separate, larger rate for these few scalars is the usual remedy in task models built on
    ELMo or BERT layer mixes."""
    mix = [head.scalar_mix.scalar_parameters, head.scalar_mix.gamma]
    mix_ids = {id(parameter) for parameter in mix}
    rest = [parameter for parameter in task_parameters(head) if id(parameter) not in mix_ids]
    mix = [parameter for parameter in mix if parameter.requires_grad]
    groups = [{"params": rest, "lr": learning_rate, "weight_decay": 0.0}]
    if mix:
        groups.append({"params": mix, "lr": mix_learning_rate, "weight_decay": 0.0})
    return groups


# ---------------------------------------------------------------------------------------------------------------
# Training on cached layers


def batches(lengths: Sequence[int], batch_size: int, generator: random.Random | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding). With a `generator` (training), items of equal
    length are shuffled before grouping, so that a batch does not hold a run of neighbouring items (e.g. one
    class), and the batch order is shuffled."""
    order = list(range(len(lengths)))
    if generator is not None:
        generator.shuffle(order)
    order.sort(key=lambda index: lengths[index])
    grouped = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if generator is not None:
        generator.shuffle(grouped)
    return grouped


def collate(
    features: Sequence[torch.Tensor],
    indices: Sequence[int],
    select: str | int,
    num_layers: int,
    device: str | torch.device = "cpu",
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Pad the items' (K, words, H) features into the L + 1 layer tensors (B, T, H) the heads take, and the mask.
    `select`: "all" (the K = L + 1 layers) or a layer index, repeated in every position."""
    items = [features[index] for index in indices]
    width = max(item.shape[1] for item in items)
    stacked = torch.zeros(len(items), items[0].shape[0], width, items[0].shape[2])
    mask = torch.zeros(len(items), width, dtype=torch.bool)
    for row, item in enumerate(items):
        stacked[row, :, : item.shape[1]] = item.float()
        mask[row, : item.shape[1]] = True
    stacked, mask = stacked.to(device), mask.to(device)
    if select == "all":
        return [stacked[:, layer] for layer in range(stacked.shape[1])], mask
    return [stacked[:, select]] * num_layers, mask


def _token_labels(labels: Sequence[torch.Tensor], indices: Sequence[int], width: int) -> torch.Tensor:
    out = torch.full((len(indices), width), TOKEN_IGNORE_INDEX, dtype=torch.long)
    for row, index in enumerate(indices):
        out[row, : labels[index].shape[0]] = labels[index]
    return out


def train_head(
    head: nn.Module,
    train: tuple[Sequence[torch.Tensor], Sequence],
    test: tuple[Sequence[torch.Tensor], Sequence],
    *,
    sequence: bool,
    select: str | int,
    num_layers: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    mix_learning_rate: float | None = None,
) -> dict:
    """Train `head.classify_layers` on `train` (features, labels) with Adam, then score accuracy on `test`.
    The mix's s and γ learn at `mix_learning_rate` (default: `learning_rate`), the rest at `learning_rate`
    (`parameter_groups`). Returns the accuracy (%), the final training loss, the mix's weights and γ (for
    `select="all"`), seconds."""
    start = time.perf_counter()
    device = next(head.parameters()).device
    parameters = task_parameters(head)
    groups = parameter_groups(head, learning_rate, learning_rate if mix_learning_rate is None else mix_learning_rate)
    optimizer = torch.optim.Adam(groups)
    generator = random.Random(seed)
    features, labels = train
    lengths = [item.shape[1] for item in features]
    loss_sum = loss_count = 0.0
    for _ in range(epochs):
        head.train()
        loss_sum = loss_count = 0.0
        for indices in batches(lengths, batch_size, generator):
            layers, mask = collate(features, indices, select, num_layers, device)
            if sequence:
                targets = torch.tensor([labels[index] for index in indices], dtype=torch.long)
            else:
                targets = _token_labels(labels, indices, mask.shape[1])
            output = head.classify_layers(layers, mask, labels=targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer.step()
            loss_sum += float(output.loss.detach()) * len(indices)
            loss_count += len(indices)
    predictions = predict(head, test[0], sequence=sequence, select=select, num_layers=num_layers)
    accuracy = _accuracy(predictions, test[1], sequence)
    result = {
        "accuracy": accuracy,
        "final_train_loss": loss_sum / max(loss_count, 1),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if select == "all":
        result["mix_weights"] = [round(value, 4) for value in head.scalar_mix.normalized_weights().tolist()]
        result["gamma"] = round(float(head.scalar_mix.gamma.detach()), 4)
    return result


def predict(
    head: nn.Module, features: Sequence[torch.Tensor], *, sequence: bool, select: str | int, num_layers: int
) -> list:
    """Predicted label per item (sequence) or per word (a tensor per item)."""
    head.eval()
    device = next(head.parameters()).device
    predictions: list = [None] * len(features)
    with torch.no_grad():
        for indices in batches([item.shape[1] for item in features], 64):
            layers, mask = collate(features, indices, select, num_layers, device)
            logits = head.classify_layers(layers, mask).logits.argmax(dim=-1).cpu()
            for row, index in enumerate(indices):
                predictions[index] = int(logits[row]) if sequence else logits[row, : features[index].shape[1]]
    return predictions


def _accuracy(predictions: Sequence, gold: Sequence, sequence: bool) -> float:
    if sequence:
        correct = sum(int(p == g) for p, g in zip(predictions, gold, strict=True))
        return round(100.0 * correct / max(len(gold), 1), 2)
    correct = sum(int((p == g).sum()) for p, g in zip(predictions, gold, strict=True))
    total = sum(int(g.shape[0]) for g in gold)
    return round(100.0 * correct / max(total, 1), 2)
