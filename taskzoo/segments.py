"""Segment-level measures of frame labelling, as used in temporal action segmentation.

Frame accuracy rewards a prediction that flickers between labels inside one action as long as
most frames are right. The segmental edit score and the F1 score at an overlap threshold look at
the predicted segments instead (Lea et al., 2017; Farha and Gall, 2019): over-segmentation costs.
"""

import numpy as np


def segments(labels):
    """Runs of equal labels: a list of (label, first frame, last frame)."""
    labels = list(labels)
    runs = []
    start = 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            runs.append((labels[start], start, index - 1))
            start = index
    return runs


def edit_score(predicted, truth):
    """100 x (1 - Levenshtein distance between the segment label sequences / the longer length)."""
    a = [label for label, _, _ in segments(predicted)]
    b = [label for label, _, _ in segments(truth)]
    if not a and not b:
        return 100.0
    distance = np.arange(len(b) + 1, dtype=np.int64)
    for i in range(1, len(a) + 1):
        previous, distance[0] = distance.copy(), i
        for j in range(1, len(b) + 1):
            distance[j] = min(
                previous[j] + 1, distance[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1])
            )
    return 100.0 * (1.0 - distance[len(b)] / max(len(a), len(b)))


def overlap_counts(predicted, truth, threshold):
    """True positives, false positives and false negatives of predicted segments: a predicted
    segment is a hit when its intersection over union with a not yet matched true segment of the
    same label reaches `threshold`."""
    predicted_runs, true_runs = segments(predicted), segments(truth)
    matched = [False] * len(true_runs)
    hits = 0
    for label, start, end in predicted_runs:
        best, best_index = 0.0, None
        for index, (true_label, true_start, true_end) in enumerate(true_runs):
            if true_label != label:
                continue
            intersection = min(end, true_end) - max(start, true_start) + 1
            union = max(end, true_end) - min(start, true_start) + 1
            if intersection / union > best:
                best, best_index = intersection / union, index
        if best_index is not None and best >= threshold and not matched[best_index]:
            matched[best_index] = True
            hits += 1
    return hits, len(predicted_runs) - hits, len(true_runs) - hits


def segment_scores(predictions, truths, threshold=0.5):
    """Mean edit score and F1 at `threshold` (both 0-100) over videos; the F1 counts are summed over
    all videos before the score is taken, as in the usual evaluation."""
    hits = false_positives = false_negatives = 0
    edits = []
    for predicted, truth in zip(predictions, truths):
        edits.append(edit_score(predicted, truth))
        tp, fp, fn = overlap_counts(predicted, truth, threshold)
        hits, false_positives, false_negatives = hits + tp, false_positives + fp, false_negatives + fn
    precision = hits / max(hits + false_positives, 1)
    recall = hits / max(hits + false_negatives, 1)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "edit_score": float(np.mean(edits)) if edits else 0.0,
        f"f1_{round(threshold * 100)}": 100.0 * f1,
    }
