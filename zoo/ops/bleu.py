"""The course's BLEU of one translation against one reference (lecture 63, book section 9.7.4).

``exp(min(0, 1 - len_label / len_pred)) * prod_{n=1..k} p_n ** (1 / 2 ** n)``, where ``p_n`` is
the clipped precision of the prediction's n-grams: each n-gram of the reference matches at most
once. Sentences are split on spaces. Where the course divides by zero (an empty prediction, or
one shorter than ``n`` tokens) the score here is 0. Corpus BLEU for evaluation is sacreBLEU's
(``zoo.tasks.seq2seq``); this is the per-sentence score the course prints.
"""

from __future__ import annotations

import math
from collections import Counter


def course_bleu(pred: str, label: str, k: int = 2) -> float:
    """The course's ``bleu(pred_seq, label_seq, k)``."""
    pred_tokens, label_tokens = pred.split(), label.split()
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    if len_pred == 0:
        return 0.0
    score = math.exp(min(0.0, 1 - len_label / len_pred))
    for n in range(1, k + 1):
        total = len_pred - n + 1
        if total <= 0:
            return 0.0
        label_ngrams = Counter(tuple(label_tokens[i : i + n]) for i in range(len_label - n + 1))
        matches = 0
        for i in range(total):
            gram = tuple(pred_tokens[i : i + n])
            if label_ngrams[gram] > 0:
                matches += 1
                label_ngrams[gram] -= 1
        score *= (matches / total) ** (0.5**n)
    return score
