"""Evaluation on a labelled split: accuracy, loss, confusion matrix, per-class metrics, confident mistakes.

Start at `evaluate`, which the CLI and the app's Evaluate page call: it runs the model over the split with
`predict_logits` (large batches, inference mode, the model's own device) and returns an `EvaluationReport`, whose
methods pick out the galleries (confident mistakes, correct readings, one confusion-matrix cell). `quick_accuracy`
is the training loop's lighter version: accuracy, loss and `confidence_floor` in one host sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mnist_core.data import MnistSplit, normalize

EVAL_BATCH = 2048  # large batches: evaluation has no gradients, so memory allows it and throughput rises
# A reading is "unsure" when the model's top probability is lower than on all but this fraction of the test digits
# it reads correctly. A threshold per model: label smoothing, for one, keeps every confidence near 0.9.
UNSURE_QUANTILE = 0.02
# % of the test digits: a model below it (a run stopped early, a quick run of a few batches) is weak, and the app says
# so where it becomes or is the active model.
WEAK_MODEL_ACCURACY = 90.0


def autocast_for(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA (tensor cores, half the memory traffic); a no-op elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.inference_mode()
def predict_logits(model: nn.Module, images_uint8: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """float32 logits [N, 10] on the model's device, for uint8 images [N, 28, 28] (moved there batch by batch)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, images_uint8.shape[0], batch_size):
            batch = normalize(images_uint8[start:start + batch_size].to(device, non_blocking=True))
            # oneDNN's and cuDNN's fast conv layout; `fit` and `load_checkpoint` leave models in it too. (Not
            # converting the model here: under inference mode that would make its weights untrainable.)
            batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast_for(device):
                outputs.append(model(batch).float())
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, 10, device=device)


def confidence_floor(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The UNSURE_QUANTILE quantile of the top probability over the correctly classified images (0-dim tensor).

    Computed with a sort on the device rather than boolean indexing, so it costs no host sync.
    """
    if not len(labels):
        return torch.zeros((), device=probabilities.device)
    confidences, predictions = probabilities.max(1)
    correct = predictions == labels
    ranked = torch.where(correct, confidences, torch.ones_like(confidences) * 2).sort().values  # wrong ones last
    position = (correct.sum() * UNSURE_QUANTILE).long().clamp(max=len(labels) - 1)
    return torch.where(correct.any(), ranked[position], torch.zeros_like(ranked[position]))  # none right: no floor


@dataclass
class EvaluationReport:
    """What `evaluate` returns: the numbers for the split, and every image's reading for the galleries."""

    accuracy: float  # percent, 0–100
    loss: float  # mean cross-entropy
    confusion: list[list[int]]  # rows = true digit, columns = predicted digit
    per_class: list[dict[str, float]]  # digit, precision, recall, f1, support
    predictions: torch.Tensor = field(repr=False)  # int64 [N] on CPU
    confidences: torch.Tensor = field(repr=False)  # float [N] top probability on CPU
    probabilities: torch.Tensor = field(repr=False)  # float [N, 10] on CPU
    confidence_floor: float = 0.0  # below this top probability a reading is unsure (see UNSURE_QUANTILE)

    def mistakes(self, labels: torch.Tensor, limit: int = 36) -> list[dict[str, Any]]:
        """The most confident wrong predictions: index, true, predicted, confidence (highest first)."""
        wrong = (self.predictions != labels.cpu()).nonzero().flatten()
        order = self.confidences[wrong].argsort(descending=True)[:limit]
        return self._readings(labels, wrong[order])

    def correct(self, labels: torch.Tensor, limit: int = 36) -> list[dict[str, Any]]:
        """The first correct predictions, in test-set order (a gallery of what the model gets right)."""
        right = (self.predictions == labels.cpu()).nonzero().flatten()[:limit]
        return self._readings(labels, right)

    def _readings(self, labels: torch.Tensor, indices: torch.Tensor) -> list[dict[str, Any]]:
        """A gallery's rows: index, true digit, predicted digit and confidence of each test image in `indices`."""
        return [{"index": int(i), "true": int(labels[i]), "predicted": int(self.predictions[i]),
                 "confidence": float(self.confidences[i])} for i in indices]

    def cell(self, labels: torch.Tensor, true_digit: int, predicted_digit: int, limit: int = 36) -> list[int]:
        """Test indices whose true digit and prediction fall in one confusion-matrix cell."""
        hits = ((labels.cpu() == true_digit) & (self.predictions == predicted_digit)).nonzero().flatten()
        return [int(i) for i in hits[:limit]]

    def to_json(self) -> dict[str, Any]:
        """The split-wide numbers (not the per-image tensors), as the CLI prints them."""
        return {"test_accuracy": self.accuracy, "test_loss": self.loss, "confidence_floor": self.confidence_floor,
                "confusion_matrix": self.confusion, "per_class": self.per_class}


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Counts [classes, classes]: row = true digit, column = predicted digit (one bincount, no loop)."""
    return torch.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def per_class_metrics(confusion: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each digit, from the confusion matrix (0 where a ratio has no images)."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = torch.where(predicted > 0, true_positive / predicted.clamp(min=1), torch.zeros_like(predicted))
    recall = torch.where(support > 0, true_positive / support.clamp(min=1), torch.zeros_like(support))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-12),
                     torch.zeros_like(recall))
    return [{"digit": d, "precision": float(precision[d]), "recall": float(recall[d]), "f1": float(f1[d]),
             "support": int(support[d])} for d in range(confusion.shape[0])]


def evaluate(model: nn.Module, split: MnistSplit) -> EvaluationReport:
    """The full report on `split` (an empty split gives accuracy 0 and loss nan)."""
    logits = predict_logits(model, split.images)
    labels = split.labels.to(logits.device)
    loss = float(F.cross_entropy(logits, labels)) if len(labels) else float("nan")
    probabilities = logits.softmax(1)
    confidences, predictions = probabilities.max(1)
    confusion = confusion_matrix(labels, predictions).cpu()
    accuracy = 100.0 * float((predictions == labels).float().mean()) if len(labels) else 0.0
    return EvaluationReport(accuracy, loss, confusion.tolist(), per_class_metrics(confusion), predictions.cpu(),
                            confidences.cpu(), probabilities.cpu(), float(confidence_floor(probabilities, labels)))


@torch.inference_mode()
def quick_accuracy(model: nn.Module, split: MnistSplit) -> tuple[float, float, float]:
    """(accuracy %, mean loss, confidence floor): what the training loop needs at each evaluation point, in one
    host sync."""
    logits = predict_logits(model, split.images)
    labels = split.labels.to(logits.device)
    stats = torch.stack([(logits.argmax(1) == labels).float().mean() * 100, F.cross_entropy(logits, labels),
                         confidence_floor(logits.softmax(1), labels)])
    accuracy, loss, floor = stats.tolist()
    return accuracy, loss, floor
