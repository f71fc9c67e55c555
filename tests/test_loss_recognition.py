"""Losses recognised by what they compute (a wrapped F.cross_entropy is still cross-entropy)."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from twinrun.engine._losses import recognise_loss

LOGITS = torch.zeros(4, 6)
LABELS = torch.tensor([0, 5, 2, 1])
LM_LOGITS = torch.zeros(2, 7, 9)
LM_TARGETS = torch.randint(0, 9, (2, 7), generator=torch.Generator().manual_seed(0))
VALUES = torch.zeros(4, 3)
TARGETS01 = torch.rand(4, 3, generator=torch.Generator().manual_seed(1))


def wrapped_ce(logits, y):
    return F.cross_entropy(logits, y)


def lm_loss(logits, y):
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


@pytest.mark.parametrize(("loss", "pred", "targets", "expected"), [
    (wrapped_ce, LOGITS, LABELS, ("cross_entropy", 1)),
    (lambda o, y: F.cross_entropy(o, y), LOGITS, LABELS, ("cross_entropy", 1)),
    (functools.partial(F.cross_entropy, reduction="mean"), LOGITS, LABELS, ("cross_entropy", 1)),
    (nn.CrossEntropyLoss(), LOGITS, LABELS, ("cross_entropy", 1)),
    (lm_loss, LM_LOGITS, LM_TARGETS, ("cross_entropy", -1)),
    (lambda o, y: F.nll_loss(o, y), LOGITS, LABELS, ("nll", 1)),
    (lambda o, y: F.binary_cross_entropy_with_logits(o, y), VALUES, TARGETS01, ("bce_logits", None)),
    (lambda o, y: F.binary_cross_entropy(o, y), VALUES, TARGETS01, ("bce", None)),
    (lambda o, y: ((o - y) ** 2).mean(), VALUES, TARGETS01 * 5, ("mse", None)),
])
def test_a_loss_is_recognised_by_what_it_computes(loss, pred, targets, expected):
    assert recognise_loss(loss, pred, targets) == expected


@pytest.mark.parametrize("loss", [
    lambda o, y: F.cross_entropy(o, y, label_smoothing=0.1),
    lambda o, y: F.cross_entropy(o, y, reduction="sum"),
    lambda o, y: F.cross_entropy(o, y) + 0.01 * o.pow(2).mean(),
    lambda o, y: F.l1_loss(o.float(), F.one_hot(y, 6).float()),
])
def test_a_loss_that_is_none_of_them_is_unknown(loss):
    assert recognise_loss(loss, LOGITS, LABELS) is None


def test_recognition_draws_nothing_from_the_global_generators():
    state = torch.get_rng_state()
    recognise_loss(wrapped_ce, LOGITS, LABELS)
    assert torch.equal(torch.get_rng_state(), state)
