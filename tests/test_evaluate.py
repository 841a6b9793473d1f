"""Evaluation: confusion matrix orientation, per-class metrics on a hand-checked example, confident mistakes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mnist_core.data import MnistSplit
from mnist_core.evaluate import (UNSURE_QUANTILE, confidence_floor, confusion_matrix, evaluate, per_class_metrics,
                                 predict_logits, quick_accuracy)


class FixedLogits(nn.Module):
    """A stand-in model that answers the given logits, in order, whatever the images."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.served = 0
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate finds the device through the parameters

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = self.logits[self.served:self.served + images.shape[0]]
        self.served += images.shape[0]
        return batch


def _split(labels: list[int]) -> MnistSplit:
    return MnistSplit(torch.zeros(len(labels), 28, 28, dtype=torch.uint8), torch.tensor(labels))


def _logits_for(predictions: list[int], confidences: list[float]) -> torch.Tensor:
    """Logits whose softmax puts `confidence` on the predicted digit and spreads the rest evenly."""
    probabilities = torch.tensor([[(1 - c) / 9] * 10 for c in confidences])
    for row, (digit, confidence) in enumerate(zip(predictions, confidences)):
        probabilities[row, digit] = confidence
    return probabilities.log()


def test_confusion_matrix_rows_are_the_true_digit() -> None:
    labels, predictions = torch.tensor([3, 3, 5]), torch.tensor([3, 8, 5])
    matrix = confusion_matrix(labels, predictions)
    assert matrix.shape == (10, 10)
    assert matrix[3, 8] == 1 and matrix[8, 3] == 0  # a true 3 read as 8 lands in row 3
    assert matrix[3, 3] == 1 and matrix[5, 5] == 1 and matrix.sum() == 3


def test_per_class_metrics_on_a_hand_checked_example() -> None:
    # true:      0 0 0 1 1 2
    # predicted: 0 0 1 1 2 2
    matrix = confusion_matrix(torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 2, 2]), classes=3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    metrics = per_class_metrics(matrix)
    expected = [  # precision = TP / predicted, recall = TP / support, F1 = harmonic mean
        dict(digit=0, precision=1.0, recall=2 / 3, f1=0.8, support=3),
        dict(digit=1, precision=0.5, recall=0.5, f1=0.5, support=2),
        dict(digit=2, precision=0.5, recall=1.0, f1=2 / 3, support=1),
    ]
    for got, want in zip(metrics, expected):
        assert got == pytest.approx(want)


def test_a_digit_never_seen_nor_predicted_scores_zero_not_nan() -> None:
    metrics = per_class_metrics(confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 1])))
    assert metrics[7] == {"digit": 7, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_evaluate_reports_accuracy_loss_and_the_most_confident_mistakes_first() -> None:
    labels = [0, 1, 2, 3, 4, 5]
    predictions = [0, 7, 2, 8, 4, 9]  # three mistakes: indices 1, 3, 5
    confidences = [0.9, 0.6, 0.8, 0.95, 0.7, 0.3]
    split = _split(labels)
    report = evaluate(FixedLogits(_logits_for(predictions, confidences)), split)
    assert report.accuracy == pytest.approx(50.0)
    # Mean cross-entropy: the true digit gets `confidence` when right, (1 - confidence) / 9 when wrong.
    true_probabilities = [0.9, 0.4 / 9, 0.8, 0.05 / 9, 0.7, 0.7 / 9]
    assert report.loss == pytest.approx(-sum(map(math.log, true_probabilities)) / 6, rel=1e-5)
    mistakes = report.mistakes(split.labels)
    assert [(m["index"], m["true"], m["predicted"]) for m in mistakes] == [(3, 3, 8), (1, 1, 7), (5, 5, 9)]
    assert [m["confidence"] for m in mistakes] == pytest.approx([0.95, 0.6, 0.3], rel=1e-5)
    assert len(report.mistakes(split.labels, limit=2)) == 2
    assert [c["index"] for c in report.correct(split.labels)] == [0, 2, 4]
    assert report.cell(split.labels, true_digit=3, predicted_digit=8) == [3]
    assert report.confusion[1][7] == 1 and sum(map(sum, report.confusion)) == 6


def test_json_report_has_the_contract_fields() -> None:
    report = evaluate(FixedLogits(_logits_for([1, 1], [0.9, 0.9])), _split([1, 2]))
    value = report.to_json()
    assert set(value) >= {"test_accuracy", "test_loss", "confusion_matrix", "per_class"}
    assert len(value["confusion_matrix"]) == 10
    assert all(len(row) == 10 and all(isinstance(n, int) for n in row) for row in value["confusion_matrix"])
    assert len(value["per_class"]) == 10


def test_quick_accuracy_agrees_with_evaluate() -> None:
    logits = _logits_for([0, 7, 2, 8], [0.9, 0.6, 0.8, 0.95])
    split = _split([0, 1, 2, 3])
    accuracy, loss, floor = quick_accuracy(FixedLogits(logits), split)
    report = evaluate(FixedLogits(logits), split)
    assert accuracy == pytest.approx(report.accuracy) and loss == pytest.approx(report.loss)
    assert floor == pytest.approx(report.confidence_floor) and report.to_json()["confidence_floor"] == floor


def test_confidence_floor_is_a_low_quantile_of_the_right_answers_only() -> None:
    right = torch.linspace(0.5, 1.0, 100).tolist()  # 100 correct readings, evenly from 50 % to 100 % sure
    wrong = [0.2] * 20  # wrong readings do not count, however unsure
    labels = list(range(10)) * 12
    predictions = labels[:100] + [(digit + 1) % 10 for digit in labels[100:]]
    probabilities = _logits_for(predictions, right + wrong).softmax(1)
    floor = float(confidence_floor(probabilities, torch.tensor(labels)))
    assert floor == pytest.approx(right[int(100 * UNSURE_QUANTILE)], abs=1e-6)  # the 2nd lowest of 100 (index 2)
    assert float(confidence_floor(probabilities[100:], torch.tensor(labels[100:]))) == 0.0  # nothing right: no floor
    assert float(confidence_floor(probabilities[:0], torch.tensor(labels[:0]))) == 0.0


def test_predict_logits_batches_restores_training_mode_and_handles_no_images() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Dropout(0.5)).train()
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    in_batches = predict_logits(model, images, batch_size=2)
    assert in_batches.shape == (5, 10)
    assert torch.allclose(in_batches, predict_logits(model, images), atol=1e-6)  # eval mode: dropout off
    assert model.training
    assert predict_logits(model, images[:0]).shape == (0, 10)
