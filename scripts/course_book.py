"""The course's experiments as the Chinese book (zh.d2l.ai, v2) runs them, on the ``d2l`` package 1.0.3.

Imported by ``scripts/course_side.py`` once the package is on ``sys.path`` (it is not importable
before). Everything the package has is called from it (``d2l.train_ch6``, ``d2l.train_seq2seq``,
``d2l.train_ch11``, ``d2l.load_data_fashion_mnist``, ``d2l.load_data_nmt``, ``d2l.load_data_ptb``,
``d2l.Seq2SeqEncoder``, ``d2l.TransformerEncoder``, ``d2l.MultiHeadAttention``, ...). What the book
defines only in its text, and the Chinese book's helpers that 1.0.3 lacks (``train_ch3``,
``train_ch8``, ``load_data_time_machine``, ``RNNModel``), are written here in our own words, doing
what the book's code does; nothing else is changed. Each ``row_<id>`` returns the number the course
prints (``value``) and what it plots (``curve`` over ``curve_x``).
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import torch
from d2l import torch as d2l
from torch import nn
from torch.nn import functional as F

CPU = d2l.try_gpu()  # the course trains on d2l.try_gpu(): the CPU on this machine


def seed_all(seed: int) -> None:
    """The course seeds nothing; a run here seeds Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _last_board(line: int = 0) -> dict:
    """The value, curve and x of one line of the last board the course plotted on."""
    board = d2l.Animator.made[-1]
    xs, ys = board.line(line)
    return {"value": ys[-1], "curve": ys, "curve_x": xs}


# --- lectures 08-13: the Chinese book's training loop for chapter 3 (not in 1.0.3) -----------------


def evaluate_accuracy(net, data_iter) -> float:
    if isinstance(net, nn.Module):
        net.eval()
    metric = d2l.Accumulator(2)  # correct predictions, predictions
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(d2l.accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def train_epoch_ch3(net, train_iter, loss, updater) -> tuple[float, float]:
    if isinstance(net, nn.Module):
        net.train()
    metric = d2l.Accumulator(3)  # loss sum, correct predictions, examples
    for X, y in train_iter:
        y_hat = net(X)
        losses = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            losses.mean().backward()
            updater.step()
        else:
            losses.sum().backward()
            updater(X.shape[0])
        metric.add(float(losses.sum()), d2l.accuracy(y_hat, y), y.numel())
    return metric[0] / metric[2], metric[1] / metric[2]


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater) -> None:
    animator = d2l.Animator(xlabel="epoch", xlim=[1, num_epochs], legend=["train loss", "train acc", "test acc"])
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        animator.add(epoch + 1, (*train_metrics, evaluate_accuracy(net, test_iter)))


def _normal_init(m: nn.Module) -> None:
    if type(m) is nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


def _fashion_mnist_concise(net: nn.Sequential, lr: float) -> dict:
    """The concise chapter-3/4 recipe: N(0, 0.01) weights, per-example cross-entropy, SGD, batch 256,
    10 epochs, train_ch3; the value is the test accuracy after the last epoch."""
    net.apply(_normal_init)
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    loss = nn.CrossEntropyLoss(reduction="none")
    train_ch3(net, train_iter, test_iter, loss, 10, torch.optim.SGD(net.parameters(), lr=lr))
    out = _last_board(2)
    board = d2l.Animator.made[-1]
    out["extra"] = {"train_loss": board.Y[0][-1], "train_acc": board.Y[1][-1]}
    return out


def row_softmax_regression() -> dict:
    return _fashion_mnist_concise(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 0.1)


def row_mlp() -> dict:
    return _fashion_mnist_concise(nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)), 0.1)


def row_dropout() -> dict:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))  # fmt: skip
    return _fashion_mnist_concise(net, 0.5)


def data_iter(batch_size, features, labels):
    """Linear regression from scratch: the examples in a random order, batch by batch."""
    indices = list(range(len(features)))
    random.shuffle(indices)
    for i in range(0, len(indices), batch_size):
        batch = torch.tensor(indices[i : i + batch_size])
        yield features[batch], labels[batch]


def row_linear_regression() -> dict:
    features, labels = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 1000)
    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    lr, num_epochs, batch_size, curve = 0.03, 3, 10, []
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            d2l.squared_loss(d2l.linreg(X, w, b), y).sum().backward()
            d2l.sgd([w, b], lr, batch_size)
        with torch.no_grad():
            curve.append(float(d2l.squared_loss(d2l.linreg(features, w, b), labels).mean()))
    return {"value": curve[-1], "curve": curve, "curve_x": list(range(1, num_epochs + 1)),
            "extra": {"w_error": (torch.tensor([2, -3.4]) - w.detach().reshape(-1)).tolist(),
                      "b_error": 4.2 - float(b)}}  # fmt: skip


def row_weight_decay() -> dict:
    """Lecture 12, concisely: weight decay 3 on the weight, none on the bias; the test MSE."""
    n_train, n_test, num_inputs, batch_size = 20, 100, 200, 5
    true_w, true_b = torch.ones((num_inputs, 1)) * 0.01, 0.05
    train_iter = d2l.load_array(d2l.synthetic_data(true_w, true_b, n_train), batch_size)
    test_iter = d2l.load_array(d2l.synthetic_data(true_w, true_b, n_test), batch_size, is_train=False)
    net = nn.Sequential(nn.Linear(num_inputs, 1))
    for param in net.parameters():
        param.data.normal_()
    loss = nn.MSELoss(reduction="none")
    trainer = torch.optim.SGD([{"params": net[0].weight, "weight_decay": 3}, {"params": net[0].bias}], lr=0.003)
    animator = d2l.Animator(xlabel="epochs", ylabel="loss", yscale="log", legend=["train", "test"])
    for epoch in range(100):
        for X, y in train_iter:
            trainer.zero_grad()
            loss(net(X), y).mean().backward()
            trainer.step()
        if (epoch + 1) % 5 == 0:
            animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, loss), d2l.evaluate_loss(net, test_iter, loss)))
    out = _last_board(1)
    out["extra"] = {"train_loss": animator.Y[0][-1], "w_norm": float(net[0].weight.norm())}
    return out


def _polynomial(num_features: int, num_epochs: int) -> dict:
    """Lecture 11: y = 5 + 1.2x - 3.4x^2/2! + 5.6x^3/3! + noise 0.1, 100 train and 100 test rows of
    the 20 scaled powers x^i / i!; a bias-free linear net on the first ``num_features`` of them, SGD
    lr 0.01, batch 10, the book's train_epoch_ch3 with MSELoss; the value is the final test loss."""
    max_degree, n_train = 20, 100
    true_w = np.zeros(max_degree)
    true_w[0:4] = np.array([5, 1.2, -3.4, 5.6])
    features = np.random.normal(size=(2 * n_train, 1))
    np.random.shuffle(features)
    poly = np.power(features, np.arange(max_degree).reshape(1, -1))
    for i in range(max_degree):
        poly[:, i] /= math.gamma(i + 1)
    labels = np.dot(poly, true_w) + np.random.normal(scale=0.1, size=2 * n_train)
    poly, labels = (torch.tensor(a, dtype=torch.float32) for a in (poly, labels))
    train_data = (poly[:n_train, :num_features], labels[:n_train].reshape(-1, 1))
    test_data = (poly[n_train:, :num_features], labels[n_train:].reshape(-1, 1))
    train_iter, test_iter = d2l.load_array(train_data, 10), d2l.load_array(test_data, 10, is_train=False)
    loss = nn.MSELoss(reduction="none")
    net = nn.Sequential(nn.Linear(num_features, 1, bias=False))
    trainer = torch.optim.SGD(net.parameters(), lr=0.01)
    animator = d2l.Animator(xlabel="epoch", ylabel="loss", yscale="log", legend=["train", "test"])
    for epoch in range(num_epochs):
        train_epoch_ch3(net, train_iter, loss, trainer)
        if epoch == 0 or (epoch + 1) % 20 == 0:
            animator.add(epoch + 1, (d2l.evaluate_loss(net, train_iter, loss), d2l.evaluate_loss(net, test_iter, loss)))
    out = _last_board(1)
    out["extra"] = {"train_loss": animator.Y[0][-1], "weight": net[0].weight.data.reshape(-1).tolist()}
    return out


def row_poly_normal() -> dict:
    return _polynomial(4, 400)


def row_poly_underfit() -> dict:
    return _polynomial(2, 400)


def row_poly_overfit() -> dict:
    return _polynomial(20, 1500)


def row_conv_edge() -> dict:
    """Lecture 19: learn the 1x2 kernel [1, -1] from a 6x8 image with a vertical stripe and its edge
    map (the package's corr2d); lr 3e-2, 10 steps; the value is the squared-error sum at step 10."""
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    Y = d2l.corr2d(X, torch.tensor([[1.0, -1.0]])).reshape((1, 1, 6, 7))
    X = X.reshape((1, 1, 6, 8))
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)
    curve = []
    for _ in range(10):
        sq_err = (conv2d(X) - Y) ** 2
        conv2d.zero_grad()
        sq_err.sum().backward()
        conv2d.weight.data[:] -= 3e-2 * conv2d.weight.grad
        curve.append(float(sq_err.sum()))
    return {"value": curve[-1], "curve": curve, "curve_x": list(range(1, 11)),
            "extra": {"kernel": conv2d.weight.data.reshape(-1).tolist()}}  # fmt: skip


# --- lectures 23 and 28: LeNet and batch normalisation, on the package's train_ch6 ----------------


def _train_ch6(net: nn.Module, lr: float) -> dict:
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    d2l.train_ch6(net, train_iter, test_iter, 10, lr, CPU)
    out = _last_board(2)
    board = d2l.Animator.made[-1]
    out["extra"] = {"train_loss": board.Y[0][-1], "train_acc": board.Y[1][-1]}
    return out


def row_lenet() -> dict:
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))  # fmt: skip
    return _train_ch6(net, 0.9)


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """The book's batch normalisation: batch statistics while gradients are on (training), the
    moving averages otherwise (train_ch6 evaluates under no_grad)."""
    if not torch.is_grad_enabled():
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        dims = (0,) if X.dim() == 2 else (0, 2, 3)  # per feature, or per channel
        mean = X.mean(dim=dims, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    return gamma * X_hat + beta, moving_mean.data, moving_var.data


class BatchNorm(nn.Module):
    def __init__(self, num_features: int, num_dims: int):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma, self.beta = nn.Parameter(torch.ones(shape)), nn.Parameter(torch.zeros(shape))
        self.moving_mean, self.moving_var = torch.zeros(shape), torch.ones(shape)  # plain tensors, as in the book

    def forward(self, X):
        self.moving_mean, self.moving_var = self.moving_mean.to(X.device), self.moving_var.to(X.device)
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9
        )
        return Y


def row_lenet_bn() -> dict:
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, 4), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, 4), nn.Sigmoid(), nn.AvgPool2d(2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), BatchNorm(120, 2), nn.Sigmoid(),
        nn.Linear(120, 84), BatchNorm(84, 2), nn.Sigmoid(), nn.Linear(84, 10))  # fmt: skip
    return _train_ch6(net, 1.0)


# --- book 12.11 (lecture 72): learning-rate schedules on a modern LeNet, 30 epochs ----------------


def _modern_lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))  # fmt: skip


def train_with_schedule(net, train_iter, test_iter, num_epochs, loss, trainer, device, scheduler=None) -> dict:
    """The book's loop for this section: a torch scheduler steps once an epoch; a plain callable
    sets every group's lr to ``scheduler(epoch)`` at the end of each epoch."""
    net.to(device)
    animator = d2l.Animator(xlabel="epoch", xlim=[0, num_epochs], legend=["train loss", "train acc", "test acc"])
    for epoch in range(num_epochs):
        metric = d2l.Accumulator(3)  # loss sum, correct predictions, examples
        for i, (X, y) in enumerate(train_iter):
            net.train()
            trainer.zero_grad()
            y_hat = net(X)
            batch_loss = loss(y_hat, y)
            batch_loss.backward()
            trainer.step()
            with torch.no_grad():
                metric.add(batch_loss * X.shape[0], d2l.accuracy(y_hat, y), X.shape[0])
            if (i + 1) % 50 == 0:
                animator.add(epoch + i / len(train_iter), (metric[0] / metric[2], metric[1] / metric[2], None))
        animator.add(epoch + 1, (None, None, d2l.evaluate_accuracy_gpu(net, test_iter)))
        if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
            scheduler.step()
        elif scheduler is not None:
            for group in trainer.param_groups:
                group["lr"] = scheduler(epoch)
    out = _last_board(2)
    out["extra"] = {"train_loss": metric[0] / metric[2], "train_acc": metric[1] / metric[2]}
    return out


class SquareRootScheduler:
    def __init__(self, lr=0.1):
        self.lr = lr

    def __call__(self, num_update):
        return self.lr * pow(num_update + 1.0, -0.5)


class CosineScheduler:
    """Cosine from base_lr to final_lr over max_update epochs, after an optional linear warm-up
    from warmup_begin_lr; past max_update it keeps the last rate it gave."""

    def __init__(self, max_update, base_lr=0.01, final_lr=0, warmup_steps=0, warmup_begin_lr=0):
        self.base_lr_orig, self.max_update, self.final_lr = base_lr, max_update, final_lr
        self.warmup_steps, self.warmup_begin_lr = warmup_steps, warmup_begin_lr
        self.max_steps = max_update - warmup_steps

    def __call__(self, epoch):
        if epoch < self.warmup_steps:
            return self.warmup_begin_lr + (self.base_lr_orig - self.warmup_begin_lr) * epoch / self.warmup_steps
        if epoch <= self.max_update:
            progress = (epoch - self.warmup_steps) / self.max_steps
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * (1 + math.cos(math.pi * progress)) / 2
        return self.base_lr


def _schedule(lr: float, make_scheduler=None) -> dict:
    """Batch 256, cross-entropy, SGD from ``lr`` (PyTorch's default init), 30 epochs."""
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size=256)
    net = _modern_lenet()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    scheduler = make_scheduler(trainer) if make_scheduler else None
    return train_with_schedule(net, train_iter, test_iter, 30, nn.CrossEntropyLoss(), trainer, CPU, scheduler)


def row_lenet_lr_constant() -> dict:
    return _schedule(0.3)


def row_lenet_lr_sqrt() -> dict:
    return _schedule(0.3, lambda trainer: SquareRootScheduler(lr=0.1))


def _multistep_as_plotted(trainer):
    """MultiStepLR at x0.5 after epochs 15 and 30. The book plots its rates first by stepping it 30
    times (with empty optimizer steps), so the run it prints trains at 0.125 throughout; done so here."""
    scheduler = torch.optim.lr_scheduler.MultiStepLR(trainer, milestones=[15, 30], gamma=0.5)
    for _ in range(30):
        trainer.step()
        scheduler.step()
    return scheduler


def row_lenet_lr_multistep() -> dict:
    return _schedule(0.5, _multistep_as_plotted)


def row_lenet_lr_cosine() -> dict:
    return _schedule(0.3, lambda trainer: CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01))


def row_lenet_lr_warmup() -> dict:
    return _schedule(0.3, lambda trainer: CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01))


def row_sine_mlp() -> dict:
    """Lecture 51: x_t = sin(0.01 t) + N(0, 0.2) for t = 1..1000; predict x_t from the 4 before it,
    an MLP 4-10-1 (Xavier), MSELoss, Adam lr 0.01, batch 16, the first 600 pairs, 5 epochs; the
    value is the book's printed training loss (evaluate_loss over those 600) after epoch 5."""
    T, tau = 1000, 4
    x = torch.sin(0.01 * torch.arange(1, T + 1, dtype=torch.float32)) + torch.normal(0, 0.2, (T,))
    features = torch.zeros((T - tau, tau))
    for i in range(tau):
        features[:, i] = x[i : T - tau + i]
    train_iter = d2l.load_array((features[:600], x[tau:].reshape((-1, 1))[:600]), 16, is_train=True)
    net = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 1))
    for m in (net[0], net[2]):
        nn.init.xavier_uniform_(m.weight)
    loss, trainer = nn.MSELoss(reduction="none"), torch.optim.Adam(net.parameters(), 0.01)
    curve = []
    for _ in range(5):
        for X, y in train_iter:
            trainer.zero_grad()
            loss(net(X), y).sum().backward()
            trainer.step()
        curve.append(d2l.evaluate_loss(net, train_iter, loss))
    return {"value": curve[-1], "curve": curve, "curve_x": [1, 2, 3, 4, 5]}


# --- lectures 55-58: language models on The Time Machine (the Chinese book's chapter 8) ------------


def load_data_time_machine(batch_size: int, num_steps: int, max_tokens: int = 10000):
    """Characters of the book's cleaned lines (letters only, lower case), the first 10,000 tokens,
    cut by sequential partitioning: a random offset each pass, then batch_size parallel streams."""
    with open(d2l.download("time_machine")) as f:
        lines = [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in f.readlines()]
    tokens = d2l.tokenize(lines, "char")
    vocab = d2l.Vocab(tokens)
    corpus = [vocab[token] for line in tokens for token in line][:max_tokens]

    class SequentialBatches:
        def __iter__(self):
            offset = random.randint(0, num_steps)
            num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
            Xs = torch.tensor(corpus[offset : offset + num_tokens]).reshape(batch_size, -1)
            Ys = torch.tensor(corpus[offset + 1 : offset + 1 + num_tokens]).reshape(batch_size, -1)
            for i in range(0, (Xs.shape[1] // num_steps) * num_steps, num_steps):
                yield Xs[:, i : i + num_steps], Ys[:, i : i + num_steps]

    return SequentialBatches(), vocab


class RNNModelScratch:
    """The from-scratch RNN: one-hot inputs through explicit parameters (``params``)."""

    def __init__(self, vocab_size, num_hiddens, device):
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens

        def normal(shape):
            return torch.randn(size=shape, device=device) * 0.01

        self.params = [normal((vocab_size, num_hiddens)), normal((num_hiddens, num_hiddens)),
                       torch.zeros(num_hiddens, device=device), normal((num_hiddens, vocab_size)),
                       torch.zeros(vocab_size, device=device)]  # fmt: skip
        for param in self.params:
            param.requires_grad_(True)

    def __call__(self, X, state):
        W_xh, W_hh, b_h, W_hq, b_q = self.params
        (H,) = state
        outputs = []
        for x in F.one_hot(X.T, self.vocab_size).type(torch.float32):  # (num_steps, batch, vocab)
            H = torch.tanh(x @ W_xh + H @ W_hh + b_h)
            outputs.append(H @ W_hq + b_q)
        return torch.cat(outputs, dim=0), (H,)

    def begin_state(self, batch_size, device):
        return (torch.zeros((batch_size, self.num_hiddens), device=device),)


class RNNModel(nn.Module):
    """A torch recurrent layer (nn.RNN, nn.GRU, nn.LSTM) on one-hot inputs, then a linear output."""

    def __init__(self, rnn_layer: nn.RNNBase, vocab_size: int):
        super().__init__()
        self.rnn, self.vocab_size = rnn_layer, vocab_size
        self.num_hiddens = rnn_layer.hidden_size
        self.num_directions = 2 if rnn_layer.bidirectional else 1
        self.linear = nn.Linear(self.num_hiddens * self.num_directions, vocab_size)

    def forward(self, inputs, state):
        X = F.one_hot(inputs.T.long(), self.vocab_size).type(torch.float32)
        Y, state = self.rnn(X, state)
        return self.linear(Y.reshape(-1, Y.shape[-1])), state  # (num_steps * batch, vocab)

    def begin_state(self, device, batch_size=1):
        shape = (self.num_directions * self.rnn.num_layers, batch_size, self.num_hiddens)
        if isinstance(self.rnn, nn.LSTM):
            return torch.zeros(shape, device=device), torch.zeros(shape, device=device)
        return torch.zeros(shape, device=device)


def predict_ch8(prefix, num_preds, net, vocab, device) -> str:
    """Warm the state up on ``prefix``, then append the most likely next character num_preds times."""
    state = net.begin_state(batch_size=1, device=device)
    outputs = [vocab[prefix[0]]]
    for y in prefix[1:]:
        _, state = net(torch.tensor([outputs[-1]], device=device).reshape(1, 1), state)
        outputs.append(vocab[y])
    for _ in range(num_preds):
        y, state = net(torch.tensor([outputs[-1]], device=device).reshape(1, 1), state)
        outputs.append(int(y.argmax(dim=1).reshape(1)))
    return "".join(vocab.idx_to_token[i] for i in outputs)


def train_epoch_ch8(net, train_iter, loss, updater, device) -> float:
    """One pass with the hidden state carried across batches (sequential partitioning), detached
    from the previous batch's graph; gradients clipped to norm 1. Returns the perplexity."""
    state, metric = None, d2l.Accumulator(2)  # loss sum, tokens
    for X, Y in train_iter:
        if state is None:
            state = net.begin_state(batch_size=X.shape[0], device=device)
        else:
            for s in state if isinstance(state, tuple) else (state,):
                s.detach_()
        y = Y.T.reshape(-1)
        y_hat, state = net(X, state)
        mean_loss = loss(y_hat, y.long()).mean()
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            mean_loss.backward()
            d2l.grad_clipping(net, 1)
            updater.step()
        else:
            mean_loss.backward()
            d2l.grad_clipping(net, 1)
            updater(batch_size=1)  # the loss is already a mean
        metric.add(mean_loss * y.numel(), y.numel())
    return math.exp(metric[0] / metric[1])


def train_ch8(net, train_iter, vocab, lr, num_epochs, device) -> dict:
    loss = nn.CrossEntropyLoss()
    if isinstance(net, nn.Module):
        updater = torch.optim.SGD(net.parameters(), lr)
    else:

        def updater(batch_size):
            return d2l.sgd(net.params, lr, batch_size)

    animator = d2l.Animator(xlabel="epoch", ylabel="perplexity", legend=["train"], xlim=[10, num_epochs])
    curve = []
    for epoch in range(num_epochs):
        curve.append(train_epoch_ch8(net, train_iter, loss, updater, device))
        if (epoch + 1) % 10 == 0:
            print(predict_ch8("time traveller", 50, net, vocab, device))
            animator.add(epoch + 1, [curve[-1]])
    print(f"perplexity {curve[-1]:.1f}")
    return {"value": curve[-1], "curve": curve, "curve_x": list(range(1, num_epochs + 1)),
            "extra": {"time traveller": predict_ch8("time traveller", 50, net, vocab, device),
                      "traveller": predict_ch8("traveller", 50, net, vocab, device)}}  # fmt: skip


def _time_machine(make_net, lr: float) -> dict:
    train_iter, vocab = load_data_time_machine(32, 35)
    return train_ch8(make_net(len(vocab)), train_iter, vocab, lr, 500, CPU)


def row_rnn_scratch() -> dict:
    return _time_machine(lambda v: RNNModelScratch(v, 512, CPU), 1)


def row_rnn() -> dict:
    return _time_machine(lambda v: RNNModel(nn.RNN(v, 256), v), 1)


def row_gru() -> dict:
    return _time_machine(lambda v: RNNModel(nn.GRU(v, 256), v), 1)


def row_lstm() -> dict:
    return _time_machine(lambda v: RNNModel(nn.LSTM(v, 256), v), 1)


def row_deep_lstm() -> dict:
    return _time_machine(lambda v: RNNModel(nn.LSTM(v, 256, 2), v), 2)


def row_bi_rnn() -> dict:
    """Lecture 59, the course's deliberately wrong use: a bidirectional 2-layer LSTM as a language
    model sees the future, so its perplexity is low and what it generates is nonsense (``extra``)."""
    return _time_machine(lambda v: RNNModel(nn.LSTM(v, 256, 2, bidirectional=True), v), 1)


# --- lecture 64: Nadaraya-Watson attention pooling (book text: no such model in the package) -------


def _nw_data():
    """50 sorted x in [0, 5), y = 2 sin x + x^0.8 + N(0, 0.5); 50 test x on a 0.1 grid."""
    x_train, _ = torch.sort(torch.rand(50) * 5)

    def f(x):
        return 2 * torch.sin(x) + x**0.8

    x_test = torch.arange(0, 5, 0.1)
    return x_train, f(x_train) + torch.normal(0.0, 0.5, (50,)), x_test, f(x_test)


def _nw_pool(queries, keys, values, w=1.0):
    """Gaussian-kernel attention pooling: each query averages the values, weighted by
    softmax(-((query - key) w)^2 / 2) over its keys (one row of keys and values per query)."""
    queries = queries.repeat_interleave(keys.shape[1]).reshape((-1, keys.shape[1]))
    weights = F.softmax(-(((queries - keys) * w) ** 2) / 2, dim=1)
    return torch.bmm(weights.unsqueeze(1), values.unsqueeze(-1)).reshape(-1)


def _leave_one_out(x_train, y_train):
    """Each training point's keys and values: the other 49 pairs, as the book trains the kernel."""
    n = len(x_train)
    keep = (1 - torch.eye(n)).type(torch.bool)
    return x_train.repeat((n, 1))[keep].reshape((n, -1)), y_train.repeat((n, 1))[keep].reshape((n, -1))


def row_nw_nonparametric() -> dict:
    """No training: the value is the sum of squared errors at the 50 training points, each pooled
    over all 50 training pairs; ``extra`` the same with each point left out of its own keys (the
    parametric row's loss at w = 1), and the squared-error sum against the truth on the test grid."""
    x_train, y_train, x_test, y_truth = _nw_data()
    n = len(x_train)
    fitted = _nw_pool(x_train, x_train.repeat((n, 1)), y_train.repeat((n, 1)))
    test = _nw_pool(x_test, x_train.repeat((len(x_test), 1)), y_train.repeat((len(x_test), 1)))
    keys, values = _leave_one_out(x_train, y_train)
    sse = float(((fitted - y_train) ** 2).sum())
    return {"value": sse, "curve": [sse], "curve_x": [0],
            "extra": {"leave_one_out_sse": float(((_nw_pool(x_train, keys, values) - y_train) ** 2).sum()),
                      "test_sse_vs_truth": float(((test - y_truth) ** 2).sum())}}  # fmt: skip


def row_nw_parametric() -> dict:
    """The book's NWKernelRegression: one learnable width w (from rand(1)), leave-one-out keys, MSE
    summed over the 50 points, SGD lr 0.5, 5 epochs; the value is the printed loss of epoch 5."""
    x_train, y_train, x_test, y_truth = _nw_data()
    w = nn.Parameter(torch.rand((1,), requires_grad=True))
    keys, values = _leave_one_out(x_train, y_train)
    loss, trainer = nn.MSELoss(reduction="none"), torch.optim.SGD([w], lr=0.5)
    curve = []
    for _ in range(5):
        trainer.zero_grad()
        sq_err = loss(_nw_pool(x_train, keys, values, w), y_train)
        sq_err.sum().backward()
        trainer.step()
        curve.append(float(sq_err.sum()))
    with torch.no_grad():
        test = _nw_pool(x_test, x_train.repeat((len(x_test), 1)), y_train.repeat((len(x_test), 1)), w)
    return {"value": curve[-1], "curve": curve, "curve_x": [1, 2, 3, 4, 5],
            "extra": {"w": float(w), "test_sse_vs_truth": float(((test - y_truth) ** 2).sum())}}  # fmt: skip


# --- lectures 62-68: translation on 600 English-French pairs, the package's train_seq2seq ---------


class EncoderDecoder(nn.Module):
    """The Chinese book's encoder-decoder: train_seq2seq unpacks (output, state) from it (the
    package's EncoderDecoder, from the English book, returns the output alone)."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, enc_X, dec_X, *args):
        dec_state = self.decoder.init_state(self.encoder(enc_X, *args), *args)
        return self.decoder(dec_X, dec_state)


class Seq2SeqDecoder(d2l.Decoder):
    """The GRU decoder: each step reads its token's embedding and the encoder's last top-layer state."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, *args):
        return enc_outputs[1]

    def forward(self, X, state):
        X = self.embedding(X).permute(1, 0, 2)  # (num_steps, batch, embed)
        context = state[-1].repeat(X.shape[0], 1, 1)
        output, state = self.rnn(torch.cat((X, context), 2), state)
        return self.dense(output).permute(1, 0, 2), state  # (batch, num_steps, vocab)


class Seq2SeqAttentionDecoder(d2l.AttentionDecoder):
    """Bahdanau's decoder: at each step the previous top-layer state queries the encoder's outputs
    through additive attention, and the context joins the token's embedding as the GRU's input."""

    def __init__(self, vocab_size, embed_size, num_hiddens, num_layers, dropout=0):
        super().__init__()
        self.attention = d2l.AdditiveAttention(num_hiddens, dropout)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_valid_lens, *args):
        outputs, hidden_state = enc_outputs
        return outputs.permute(1, 0, 2), hidden_state, enc_valid_lens

    def forward(self, X, state):
        enc_outputs, hidden_state, enc_valid_lens = state
        outputs, self._attention_weights = [], []
        for x in self.embedding(X).permute(1, 0, 2):  # one step: (batch, embed)
            query = hidden_state[-1].unsqueeze(1)  # (batch, 1, num_hiddens)
            context = self.attention(query, enc_outputs, enc_outputs, enc_valid_lens)
            out, hidden_state = self.rnn(torch.cat((context, x.unsqueeze(1)), -1).permute(1, 0, 2), hidden_state)
            outputs.append(out)
            self._attention_weights.append(self.attention.attention_weights)
        outputs = self.dense(torch.cat(outputs, dim=0))
        return outputs.permute(1, 0, 2), [enc_outputs, hidden_state, enc_valid_lens]

    @property
    def attention_weights(self):
        return self._attention_weights


class DecoderBlock(nn.Module):
    """The i-th Transformer decoder block: masked self-attention over the tokens so far (cached in
    ``state[2][i]`` while predicting), attention over the encoder's outputs, the FFN; each AddNorm."""

    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, i):
        super().__init__()
        self.i = i
        self.attention1 = d2l.MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm1 = d2l.AddNorm(num_hiddens, dropout)
        self.attention2 = d2l.MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.addnorm2 = d2l.AddNorm(num_hiddens, dropout)
        self.ffn = d2l.PositionWiseFFN(ffn_num_hiddens, num_hiddens)
        self.addnorm3 = d2l.AddNorm(num_hiddens, dropout)

    def forward(self, X, state):
        enc_outputs, enc_valid_lens = state[0], state[1]
        key_values = X if state[2][self.i] is None else torch.cat((state[2][self.i], X), dim=1)
        state[2][self.i] = key_values
        if self.training:  # position t sees positions 1..t
            batch_size, num_steps, _ = X.shape
            dec_valid_lens = torch.arange(1, num_steps + 1, device=X.device).repeat(batch_size, 1)
        else:
            dec_valid_lens = None
        Y = self.addnorm1(X, self.attention1(X, key_values, key_values, dec_valid_lens))
        Z = self.addnorm2(Y, self.attention2(Y, enc_outputs, enc_outputs, enc_valid_lens))
        return self.addnorm3(Z, self.ffn(Z)), state


class TransformerDecoder(d2l.AttentionDecoder):
    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout):
        super().__init__()
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = d2l.PositionalEncoding(num_hiddens, dropout)
        self.blks = nn.Sequential()
        for i in range(num_layers):
            self.blks.add_module(f"block{i}", DecoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout, i))
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs, enc_valid_lens, *args):
        return [enc_outputs, enc_valid_lens, [None] * self.num_layers]

    def forward(self, X, state):
        X = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))
        for blk in self.blks:
            X, state = blk(X, state)
        return self.dense(X), state

    @property
    def attention_weights(self):
        return None


def _translate(make_net, num_epochs: int) -> dict:
    """load_data_nmt(64, 10) (600 pairs), then the package's train_seq2seq at Adam lr 0.005. The
    package's attention layers are lazy (LazyLinear); one forward on a dummy batch first gives them
    their sizes, so that train_seq2seq's Xavier init reaches them as it reaches the Chinese book's
    fixed-size layers. ``extra``: the course's four test sentences, greedy, with BLEU-2."""
    train_iter, src_vocab, tgt_vocab = d2l.load_data_nmt(64, 10)
    net = make_net(len(src_vocab), len(tgt_vocab))
    with torch.no_grad():
        dummy = torch.zeros((2, 10), dtype=torch.long)
        net(dummy, dummy, torch.tensor([10, 10]))
    d2l.train_seq2seq(net, train_iter, 0.005, num_epochs, tgt_vocab, CPU)
    out = _last_board()
    engs = ["go .", "i lost .", "he's calm .", "i'm home ."]
    fras = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]
    out["extra"] = {}
    for eng, fra in zip(engs, fras):
        translation, _ = d2l.predict_seq2seq(net, eng, src_vocab, tgt_vocab, 10, CPU)
        out["extra"][eng] = {"translation": translation, "bleu": d2l.bleu(translation, fra, k=2)}
    out["extra"]["mean_bleu"] = sum(out["extra"][eng]["bleu"] for eng in engs) / len(engs)
    return out


def row_seq2seq() -> dict:
    return _translate(lambda src, tgt: EncoderDecoder(d2l.Seq2SeqEncoder(src, 32, 32, 2, 0.1),
                                                      Seq2SeqDecoder(tgt, 32, 32, 2, 0.1)), 300)  # fmt: skip


def row_bahdanau() -> dict:
    return _translate(lambda src, tgt: EncoderDecoder(d2l.Seq2SeqEncoder(src, 32, 32, 2, 0.1),
                                                      Seq2SeqAttentionDecoder(tgt, 32, 32, 2, 0.1)), 250)  # fmt: skip


def row_transformer() -> dict:
    return _translate(lambda src, tgt: EncoderDecoder(d2l.TransformerEncoder(src, 32, 64, 4, 2, 0.1),
                                                      TransformerDecoder(tgt, 32, 64, 4, 2, 0.1)), 200)  # fmt: skip


# --- lecture 69: BERT pretraining (the package's BERTModel, load_data_wiki, _get_batch_loss_bert) --


def _bert_pretrain() -> dict:
    """load_data_wiki(512, 64); BERTModel(128 hidden, FFN 256, 2 heads, 2 blocks, dropout 0.2); the
    book's train_bert (text): Adam lr 0.01, 50 steps, cross-entropy with the mean reduction as the
    book has it; the printed losses are means over the 50 steps (its accumulator), one per task.

    The MLM loss the book prints also averages over the padded prediction slots
    (``_get_batch_loss_bert`` weights a loss ``nn.CrossEntropyLoss()`` has already averaged), so
    it sits far below a loss over the real predictions; the MLM curve and value here are over the
    real predictions (the zoo's definition), with the printed figure kept beside them."""
    from scripts.bert_bench import RecordingLoss  # the book's loss, keeping its per-slot values

    train_iter, vocab = d2l.load_data_wiki(512, 64)
    net = d2l.BERTModel(len(vocab), 128, 256, 2, 2, 0.2)
    loss = RecordingLoss()
    trainer = torch.optim.Adam(net.parameters(), lr=0.01)
    animator = d2l.Animator(xlabel="step", ylabel="loss", xlim=[1, 50], legend=["mlm", "nsp"])
    metric, step = d2l.Accumulator(5), 0  # printed MLM loss sum, NSP sum, sentence pairs, steps, real MLM sum
    while step < 50:
        for batch in train_iter:
            trainer.zero_grad()
            loss.per_element.clear()
            mlm_l, nsp_l, total = d2l._get_batch_loss_bert(net, loss, len(vocab), *batch)
            total.backward()
            trainer.step()
            weights = batch[4].reshape(-1)
            real = float((loss.per_element[0] * weights).sum() / weights.sum())
            metric.add(mlm_l, nsp_l, batch[0].shape[0], 1, real)
            animator.add(step + 1, (metric[4] / metric[3], metric[1] / metric[3]))
            step += 1
            if step == 50:
                break
    print(f"MLM loss {metric[0] / metric[3]:.3f}, NSP loss {metric[1] / metric[3]:.3f}")
    return {"mlm": animator.line(0), "nsp": animator.line(1), "pairs": len(train_iter.dataset), "vocab": len(vocab),
            "printed_mlm": metric[0] / metric[3]}  # fmt: skip


def _bert_row(task: str) -> dict:
    run = _bert_pretrain()
    xs, ys = run[task]
    other = "nsp" if task == "mlm" else "mlm"
    extra = {f"{other}_loss": run[other][1][-1], "sentence_pairs": run["pairs"], "vocab": run["vocab"],
             "printed_mlm_loss": run["printed_mlm"]}  # fmt: skip
    return {"value": ys[-1], "curve": ys, "curve_x": xs, "extra": extra}


def row_bert_mlm() -> dict:
    return _bert_row("mlm")


def row_bert_nsp() -> dict:
    return _bert_row("nsp")


# --- lecture 72: the optimizers on airfoil, the package's train_ch11 (batch 10, 2 epochs) ---------


def sgd(params, states, hyperparams):
    for p in params:
        p.data.sub_(hyperparams["lr"] * p.grad)
        p.grad.data.zero_()


def sgd_momentum(params, states, hyperparams):
    for p, v in zip(params, states):
        with torch.no_grad():
            v[:] = hyperparams["momentum"] * v + p.grad
            p[:] -= hyperparams["lr"] * v
        p.grad.data.zero_()


def adagrad(params, states, hyperparams):
    eps = 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] += torch.square(p.grad)
            p[:] -= hyperparams["lr"] * p.grad / torch.sqrt(s + eps)
        p.grad.data.zero_()


def rmsprop(params, states, hyperparams):
    gamma, eps = hyperparams["gamma"], 1e-6
    for p, s in zip(params, states):
        with torch.no_grad():
            s[:] = gamma * s + (1 - gamma) * torch.square(p.grad)
            p[:] -= hyperparams["lr"] * p.grad / torch.sqrt(s + eps)
        p.grad.data.zero_()


def adadelta(params, states, hyperparams):
    rho, eps = hyperparams["rho"], 1e-5
    for p, (s, delta) in zip(params, states):
        with torch.no_grad():
            s[:] = rho * s + (1 - rho) * torch.square(p.grad)
            g = (torch.sqrt(delta + eps) / torch.sqrt(s + eps)) * p.grad
            p[:] -= g
            delta[:] = rho * delta + (1 - rho) * g * g
        p.grad.data.zero_()


def _adam_like(params, states, hyperparams, second_moment):
    """Adam and Yogi share the first moment and the bias correction; ``t`` counts the steps."""
    beta1, beta2, eps = 0.9, 0.999, hyperparams["eps"]
    for p, (v, s) in zip(params, states):
        with torch.no_grad():
            v[:] = beta1 * v + (1 - beta1) * p.grad
            s[:] = second_moment(s, torch.square(p.grad), beta2)
            v_hat, s_hat = v / (1 - beta1 ** hyperparams["t"]), s / (1 - beta2 ** hyperparams["t"])
            p[:] -= hyperparams["lr"] * v_hat / (torch.sqrt(s_hat) + eps)
        p.grad.data.zero_()
    hyperparams["t"] += 1


def adam(params, states, hyperparams):
    _adam_like(params, states, hyperparams, lambda s, g2, beta2: beta2 * s + (1 - beta2) * g2)


def yogi(params, states, hyperparams):
    _adam_like(params, states, hyperparams, lambda s, g2, beta2: s + (1 - beta2) * torch.sign(g2 - s) * g2)


def _airfoil(trainer_fn, states, hyperparams) -> dict:
    data_iter, feature_dim = d2l.get_data_ch11(batch_size=10)
    d2l.train_ch11(trainer_fn, states(feature_dim) if states else None, hyperparams, data_iter, feature_dim)
    return _last_board()


def _zeros(feature_dim: int, per_param: int = 1):
    """An optimizer's state as the book lays it out: (w's, b's), each one tensor or ``per_param``."""
    w = tuple(torch.zeros((feature_dim, 1)) for _ in range(per_param))
    b = tuple(torch.zeros(1) for _ in range(per_param))
    return (w[0], b[0]) if per_param == 1 else (w, b)


def row_airfoil_sgd() -> dict:
    return _airfoil(sgd, None, {"lr": 0.05})


def row_airfoil_momentum() -> dict:
    return _airfoil(sgd_momentum, _zeros, {"lr": 0.005, "momentum": 0.9})


def row_airfoil_adagrad() -> dict:
    return _airfoil(adagrad, _zeros, {"lr": 0.1})


def row_airfoil_rmsprop() -> dict:
    return _airfoil(rmsprop, _zeros, {"lr": 0.01, "gamma": 0.9})


def row_airfoil_adadelta() -> dict:
    return _airfoil(adadelta, lambda d: _zeros(d, 2), {"rho": 0.9})


def row_airfoil_adam() -> dict:
    return _airfoil(adam, lambda d: _zeros(d, 2), {"lr": 0.01, "t": 1, "eps": 1e-6})


def row_airfoil_yogi() -> dict:
    return _airfoil(yogi, lambda d: _zeros(d, 2), {"lr": 0.01, "t": 1, "eps": 1e-3})


# --- word2vec (book 14.4): skip-gram with negative sampling on PTB ---------------------------------


def skip_gram(center, contexts_and_negatives, embed_v, embed_u):
    v, u = embed_v(center), embed_u(contexts_and_negatives)  # (batch, 1, embed), (batch, max_len, embed)
    return torch.bmm(v, u.permute(0, 2, 1))  # (batch, 1, max_len)


class SigmoidBCELoss(nn.Module):
    def forward(self, inputs, target, mask=None):
        out = F.binary_cross_entropy_with_logits(inputs, target, weight=mask, reduction="none")
        return out.mean(dim=1)


def row_word2vec() -> dict:
    """embed 100, Adam lr 0.002, 5 epochs. The book's loop keeps one loss accumulator over all
    epochs, so its printed loss (the value) is the mean over the 5; the curve is that running mean
    at the end of each epoch. ``extra``: the three tokens nearest 'chip' by cosine similarity."""
    data_iter, vocab = d2l.load_data_ptb(512, 5, 5)
    net = nn.Sequential(nn.Embedding(len(vocab), 100), nn.Embedding(len(vocab), 100))
    for m in net:
        nn.init.xavier_uniform_(m.weight)
    loss, optimizer = SigmoidBCELoss(), torch.optim.Adam(net.parameters(), lr=0.002)
    metric, curve = d2l.Accumulator(2), []  # loss sum, count: never reset, as in the book
    for _ in range(5):
        for center, context_negative, mask, label in data_iter:
            optimizer.zero_grad()
            pred = skip_gram(center, context_negative, net[0], net[1])
            losses = loss(pred.reshape(label.shape).float(), label.float(), mask) / mask.sum(axis=1) * mask.shape[1]
            losses.sum().backward()
            optimizer.step()
            metric.add(losses.sum(), losses.numel())
        curve.append(metric[0] / metric[1])
    print(f"loss {curve[-1]:.3f}")
    W = net[0].weight.data
    x = W[vocab["chip"]]
    cos = torch.mv(W, x) / torch.sqrt(torch.sum(W * W, dim=1) * torch.sum(x * x) + 1e-9)
    nearest = [(vocab.to_tokens(int(i)), round(float(cos[i]), 3)) for i in torch.topk(cos, k=4)[1][1:]]
    return {"value": curve[-1], "curve": curve, "curve_x": [1, 2, 3, 4, 5], "extra": {"chip": nearest}}
