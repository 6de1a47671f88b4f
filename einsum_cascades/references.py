"""Reference definitions that library cascades declare and are checked against.

A cascade file names its reference in a statement such as::

    reference AV = softmax_attention(Q, K, V, mask=causal)

Each reference function here computes the output directly with numpy in
float64, independently of the cascade's Einsums: attention as
``softmax(S) V`` with ``S[m, p] = sum_e Q[e, p] K[e, m]`` and a stable
softmax along the keys, normalizations from their textbook formulas.  Tensors
are matched by rank name, not by axis position, so a cascade may order its
ranks as it likes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade
from einsum_cascades.operators import resolve_function, sigmoid


@dataclass
class ReferenceContext:
    """Inputs of a reference function besides the arrays: rank names of each argument, rank sizes and operators."""

    cascade: Cascade
    ranks: list[tuple[str, ...]]
    output_ranks: tuple[str, ...]
    sizes: dict[str, int]
    options: dict[str, str]
    operators: dict[str, Callable[..., np.ndarray]]


@dataclass(frozen=True)
class ReferenceFunction:
    """A registered reference: its tensor parameters, its options and the function computing it."""

    name: str
    tensors: tuple[str, ...]
    options: dict[str, str]  # option -> kind: rank, tensor, operator, number, or "a|b" for a choice
    compute: Callable[..., np.ndarray]
    summary: str


def expand(array: np.ndarray, ranks: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    """Reorder ``array``'s axes to follow ``target`` and add length-1 axes for the ranks it lacks."""
    order = [ranks.index(rank) for rank in target if rank in ranks]
    moved = np.transpose(array, order)
    shape = [array.shape[ranks.index(rank)] if rank in ranks else 1 for rank in target]
    return moved.reshape(shape)


def _letters(*rank_lists: tuple[str, ...]) -> dict[str, str]:
    names: dict[str, str] = {}
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for ranks in rank_lists:
        for rank in ranks:
            if rank not in names:
                names[rank] = alphabet[len(names)]
    return names


def _scores(context: ReferenceContext, q: np.ndarray, k: np.ndarray):
    """Return the logits ``S = Q·K`` over their shared ranks, with its rank names, the key rank and a mask."""
    q_ranks, k_ranks, v_ranks = context.ranks[:3]
    keys = context.options.get("keys")
    if keys is None:
        candidates = [rank for rank in k_ranks if rank not in q_ranks]
        if len(candidates) != 1:
            raise CascadeError(f"cannot tell the key rank of {context.cascade.name}; give keys=RANK in its reference")
        keys = candidates[0]
    queries = context.options.get("queries", q_ranks[-1])
    key_name = keys if keys != queries else keys + "'"
    k_ranks = tuple(key_name if rank == keys else rank for rank in k_ranks)
    v_ranks = tuple(key_name if rank == keys else rank for rank in v_ranks)
    contracted = tuple(rank for rank in q_ranks if rank in k_ranks and rank not in v_ranks)
    s_ranks = tuple(r for r in q_ranks if r not in contracted) + tuple(
        r for r in k_ranks if r not in q_ranks and r not in contracted
    )
    letters = _letters(q_ranks, k_ranks, v_ranks, context.output_ranks)
    spec = "".join(letters[r] for r in q_ranks) + "," + "".join(letters[r] for r in k_ranks)
    scores = np.einsum(spec + "->" + "".join(letters[r] for r in s_ranks), q, k)

    query_at = np.arange(context.sizes[queries])
    key_at = np.arange(context.sizes[keys])
    mask = np.ones((len(query_at), len(key_at)), dtype=bool)
    if context.options.get("mask") == "causal":
        mask &= key_at[None, :] <= query_at[:, None]
    window = context.options.get("window")
    if window is not None:
        width = context.sizes[window]
        mask &= (key_at[None, :] <= query_at[:, None]) & (key_at[None, :] > query_at[:, None] - width)
    mask = expand(mask, (queries, key_name), s_ranks)
    return scores, s_ranks, key_name, v_ranks, letters, mask


def _apply_values(context: ReferenceContext, weights: np.ndarray, s_ranks, v_ranks, letters, v) -> np.ndarray:
    spec = "".join(letters[r] for r in s_ranks) + "," + "".join(letters[r] for r in v_ranks)
    return np.einsum(spec + "->" + "".join(letters[r] for r in context.output_ranks), weights, v)


def softmax_attention(context: ReferenceContext, q, k, v, *extra) -> np.ndarray:
    """``AV = softmax_keys(S) V`` with a stable softmax, an optional mask, window and sink logit."""
    scores, s_ranks, key_name, v_ranks, letters, mask = _scores(context, q, k)
    axis = s_ranks.index(key_name)
    masked = np.where(mask, scores, -np.inf)
    row_max = np.max(masked, axis=axis, keepdims=True)
    sink = None
    if "sink" in context.options:
        sink = expand(extra[0], context.ranks[3], s_ranks)
        row_max = np.maximum(row_max, sink)
    numerator = np.where(mask, np.exp(masked - row_max), 0.0)
    denominator = np.sum(numerator, axis=axis, keepdims=True)
    if sink is not None:
        denominator = denominator + np.exp(sink - row_max)
    return _apply_values(context, numerator / denominator, s_ranks, v_ranks, letters, v)


def sigmoid_attention(context: ReferenceContext, q, k, v, bias) -> np.ndarray:
    """``AV = sigmoid(S + bias) V``, with the bias broadcast over the ranks it lacks."""
    scores, s_ranks, _, v_ranks, letters, mask = _scores(context, q, k)
    weights = np.where(mask, sigmoid(scores + expand(bias, context.ranks[3], s_ranks)), 0.0)
    return _apply_values(context, weights, s_ranks, v_ranks, letters, v)


def linear_attention(context: ReferenceContext, q, k, v) -> np.ndarray:
    """``O = (A V) / (A 1)`` with ``A = phi(Q)·phi(K)``, computed in the quadratic (left-product) order."""
    feature = context.operators[context.options["feature"]]
    scores, s_ranks, key_name, v_ranks, letters, mask = _scores(context, feature(q), feature(k))
    weights = np.where(mask, scores, 0.0)
    numerator = _apply_values(context, weights, s_ranks, v_ranks, letters, v)
    denominator = expand(np.sum(weights, axis=s_ranks.index(key_name)), tuple(r for r in s_ranks if r != key_name),
                         context.output_ranks)
    return numerator / denominator


def softmax(context: ReferenceContext, x) -> np.ndarray:
    """``Y = e^(X - max X) / sum e^(X - max X)`` along the rank ``over``."""
    axis = context.ranks[0].index(context.options["over"])
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def layernorm(context: ReferenceContext, x, gain, shift) -> np.ndarray:
    """``Y = (X - mean) / sqrt(var + eps) * G + BETA`` along the rank ``over`` (population variance)."""
    axis = context.ranks[0].index(context.options["over"])
    eps = float(context.options["eps"])
    centered = x - np.mean(x, axis=axis, keepdims=True)
    deviation = np.sqrt(np.mean(centered * centered, axis=axis, keepdims=True) + eps)
    x_ranks = context.ranks[0]
    return centered / deviation * expand(gain, context.ranks[1], x_ranks) + expand(shift, context.ranks[2], x_ranks)


def rmsnorm(context: ReferenceContext, x, gain) -> np.ndarray:
    """``Y = X / sqrt(mean(X^2) + eps) * G`` along the rank ``over``."""
    axis = context.ranks[0].index(context.options["over"])
    eps = float(context.options["eps"])
    scale = np.sqrt(np.mean(x * x, axis=axis, keepdims=True) + eps)
    return x / scale * expand(gain, context.ranks[1], context.ranks[0])


def dot_times_sum(context: ReferenceContext, a, b) -> np.ndarray:
    """``Z = (sum_k A[k] B[k]) * (sum_k A[k])``, the value of the FuseMax paper's Cascades 1 to 3."""
    batch = len(context.cascade.batch_ranks)
    axes = tuple(range(batch, a.ndim))
    return np.sum(a * b, axis=axes) * np.sum(a, axis=axes)


def contraction(context: ReferenceContext, *tensors) -> np.ndarray:
    """``Z = sum of the product of the tensors`` over every rank the output lacks (an Einstein summation)."""
    letters = _letters(*context.ranks, context.output_ranks)
    inputs = ",".join("".join(letters[r] for r in ranks) for ranks in context.ranks)
    return np.einsum(f"{inputs}->{''.join(letters[r] for r in context.output_ranks)}", *tensors)


_ATTENTION_OPTIONS = {"mask": "causal|none", "window": "rank", "keys": "rank", "queries": "rank"}

REFERENCES: dict[str, ReferenceFunction] = {
    entry.name: entry
    for entry in (
        ReferenceFunction("softmax_attention", ("Q", "K", "V"), {**_ATTENTION_OPTIONS, "sink": "tensor"},
                          softmax_attention, "softmax(Q·K) V along the keys"),
        ReferenceFunction("sigmoid_attention", ("Q", "K", "V", "bias"), dict(_ATTENTION_OPTIONS),
                          sigmoid_attention, "sigmoid(Q·K + bias) V"),
        ReferenceFunction("linear_attention", ("Q", "K", "V"), {**_ATTENTION_OPTIONS, "feature": "operator"},
                          linear_attention, "(phi(Q)·phi(K)) V normalized by its row sums"),
        ReferenceFunction("softmax", ("X",), {"over": "rank"}, softmax, "softmax of X along one rank"),
        ReferenceFunction("layernorm", ("X", "G", "BETA"), {"over": "rank", "eps": "number"}, layernorm,
                          "layer normalization along one rank"),
        ReferenceFunction("rmsnorm", ("X", "G"), {"over": "rank", "eps": "number"}, rmsnorm,
                          "root-mean-square normalization along one rank"),
        ReferenceFunction("dot_times_sum", ("A", "B"), {}, dot_times_sum, "(A·B) times the sum of A"),
        ReferenceFunction("contraction", ("A", "B"), {}, contraction, "the product of A and B summed over the ranks the output lacks"),
    )
}

_REQUIRED = {"softmax": ("over",), "layernorm": ("over", "eps"), "rmsnorm": ("over", "eps"),
             "linear_attention": ("feature",)}


def check_reference(cascade: Cascade) -> None:
    """Check the cascade's ``reference`` statement against the registry.

    Raises
    ------
    CascadeError
        If the function is unknown, or an argument or option does not fit it.
    """
    reference = cascade.reference
    if reference is None:
        return
    position = reference.position
    entry = REFERENCES.get(reference.function)
    if entry is None:
        raise CascadeError(
            f"unknown reference function {reference.function!r}; valid: {', '.join(sorted(REFERENCES))}", position
        )
    if reference.output not in cascade.tensors or reference.output in cascade.inputs:
        raise CascadeError(f"the reference defines {reference.output!r}, which no Einsum writes", position)
    if len(reference.tensors) != len(entry.tensors):
        raise CascadeError(
            f"{entry.name} takes {len(entry.tensors)} tensors ({', '.join(entry.tensors)}), got {len(reference.tensors)}",
            position,
        )
    for name in reference.tensors:
        if name not in cascade.tensors:
            raise CascadeError(f"reference argument {name!r} is not a tensor of the cascade", position)
    options = dict(reference.options)
    for key, value in reference.options:
        kind = entry.options.get(key)
        if kind is None:
            valid = ", ".join(sorted(entry.options)) or "none"
            raise CascadeError(f"{entry.name} has no option {key!r}; options: {valid}", position)
        _check_option(cascade, key, value, kind, position)
    for key in _REQUIRED.get(entry.name, ()):
        if key not in options:
            raise CascadeError(f"{entry.name} needs the option {key}=...", position)


def _check_option(cascade: Cascade, key: str, value: str, kind: str, position) -> None:
    if kind == "rank" and value not in cascade.ranks:
        raise CascadeError(f"option {key}={value}: {value!r} is not a rank; ranks: {' '.join(cascade.ranks)}", position)
    if kind == "tensor" and value not in cascade.tensors:
        raise CascadeError(f"option {key}={value}: {value!r} is not a tensor of the cascade", position)
    if kind == "operator" and cascade.operator(value) is None:
        raise CascadeError(f"option {key}={value}: {value!r} is not a user-defined operator of the cascade", position)
    if kind == "number":
        try:
            float(value)
        except ValueError:
            raise CascadeError(f"option {key}={value}: expected a number", position) from None
    if "|" in kind and value not in kind.split("|"):
        raise CascadeError(f"option {key}={value}: valid values are {', '.join(kind.split('|'))}", position)


def attention_logits(cascade: Cascade, tensors: dict[str, np.ndarray], sizes: dict[str, int]) -> np.ndarray:
    """Return the unmasked logits ``S = Q·K`` of an attention reference, from its first two tensors.

    Useful to scale test inputs to a given logit magnitude.

    Raises
    ------
    CascadeError
        If the cascade declares no attention reference.
    """
    reference = cascade.reference
    if reference is None or reference.function not in ("softmax_attention", "sigmoid_attention", "linear_attention"):
        raise CascadeError(f"cascade {cascade.name!r} declares no attention reference")
    context = ReferenceContext(
        cascade=cascade,
        ranks=[cascade.tensor_ranks(name) for name in reference.tensors],
        output_ranks=cascade.tensor_ranks(reference.output),
        sizes=sizes,
        options=dict(reference.options),
        operators={},
    )
    first, second = (np.asarray(tensors[name], dtype=np.float64) for name in reference.tensors[:2])
    return _scores(context, first, second)[0]


def evaluate_reference(
    cascade: Cascade,
    tensors: dict[str, np.ndarray],
    sizes: dict[str, int],
    operators: dict[str, Callable[..., np.ndarray]] | None = None,
    allow_import: bool = True,
) -> np.ndarray:
    """Compute the cascade's declared reference output from its input tensors.

    Parameters
    ----------
    cascade : Cascade
        A cascade with a ``reference`` statement.
    tensors : dict
        Arrays by tensor name, indexed in the order of the tensor's ranks
        (batch ranks first).
    sizes : dict
        Every rank size.

    Raises
    ------
    CascadeError
        If the cascade declares no reference.
    """
    reference = cascade.reference
    if reference is None:
        raise CascadeError(f"cascade {cascade.name!r} declares no reference; add a 'reference' statement")
    entry = REFERENCES[reference.function]
    options = dict(reference.options)
    arguments = list(reference.tensors)
    if "sink" in options:
        arguments.append(options["sink"])
    functions = {}
    if "feature" in options:
        definition = cascade.operator(options["feature"])
        functions[definition.name] = resolve_function(definition, operators, allow_import)
    context = ReferenceContext(
        cascade=cascade,
        ranks=[cascade.tensor_ranks(name) for name in arguments],
        output_ranks=cascade.tensor_ranks(reference.output),
        sizes=sizes,
        options=options,
        operators=functions,
    )
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return entry.compute(context, *[np.asarray(tensors[name], dtype=np.float64) for name in arguments])
