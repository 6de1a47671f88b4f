"""Python builder for cascades: the same IR and the same checks as the text language.

Tensors are handles indexed with rank expressions.  An index is a string in
the text syntax (``"m1*M0 + m0"``, ``"m1 : m1 = 0"``) or an :class:`Affine`
object from :meth:`CascadeBuilder.variables`.  Expressions combine with
``+ - * /`` and the functions of this module.  Errors carry the file and line
of the builder call that caused them.

Examples
--------
>>> from einsum_cascades.builder import CascadeBuilder, exp
>>> c = CascadeBuilder("attention-3pass")
>>> c.ranks("B H E F M P"); c.batch("B H")
>>> Q, K, V = c.inputs("Q[e,p]", "K[e,m]", "V[f,m]")
>>> QK, GM, SN, SD, A, AV = c.tensors("QK GM SN SD A AV")
>>> c.outputs("AV[f,p]")
>>> c.einsum(QK["m", "p"], Q["e", "p"] * K["e", "m"])
>>> c.einsum(GM["p"], QK["m", "p"], reduce="max")
>>> c.einsum(SN["m", "p"], exp(QK["m", "p"] - GM["p"]))
>>> c.einsum(SD["p"], SN["m", "p"])
>>> c.einsum(A["m", "p"], SN["m", "p"] / SD["p"])
>>> c.einsum(AV["f", "p"], A["m", "p"] * V["f", "m"])
>>> from einsum_cascades.library import load_library_cascade
>>> c.build().einsums == load_library_cascade("attention-3pass").einsums
True
"""

from __future__ import annotations

from typing import Callable, Iterable

from einsum_cascades.actions import ReduceAction
from einsum_cascades.builder_expressions import (
    Affine,
    Node,
    caller_position,
    as_expr,
    exp,
    maximum,
    minimum,
    sigmoid,
)
from einsum_cascades.checks import Draft, build_cascade, make_einsum
from einsum_cascades.errors import CascadeError
from einsum_cascades.expressions import ExpressionParser, ParseContext
from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Cascade,
    Condition,
    Index,
    Iteration,
    OperatorDef,
    Partition,
    RankSize,
    Reference,
    SourcePosition,
    Term,
)
from einsum_cascades.lexer import Line
__all__ = ["Affine", "CascadeBuilder", "Node", "TensorHandle", "as_expr", "exp", "maximum", "minimum", "sigmoid"]

_REDUCE_NAMES = {"sum": "add", "add": "add", "+": "add", "max": "max", "min": "min", "mul": "mul", "*": "mul"}
_POPULATE_NAMES = {None: None, "=": None, "+=": "add", "add": "add", "max": "max", "max=": "max", "min": "min",
                   "min=": "min"}


class TensorHandle:
    """A tensor name; index it (``Q["e", "p"]``) to get an access, or use it bare for a scalar."""

    def __init__(self, builder: "CascadeBuilder", name: str):
        self.builder = builder
        self.name = name

    def __getitem__(self, indices) -> Node:
        if not isinstance(indices, tuple):
            indices = (indices,)
        position = caller_position()
        return Node(Access(self.name, tuple(self.builder._index(item, position) for item in indices), position))

    def access(self) -> Node:
        """Return the tensor with no index (a scalar, or a tensor whose only ranks are batch ranks)."""
        return Node(Access(self.name, (), caller_position()))


class CascadeBuilder:
    """Build a :class:`Cascade` statement by statement, as the text language would."""

    def __init__(self, name: str, description: str = ""):
        self.draft = Draft(path="<builder>", name=name, description=description.strip(), start=caller_position())
        self.context = ParseContext("<builder>", ranks=self.draft.ranks)

    # -- declarations -------------------------------------------------------

    def ranks(self, names: str | Iterable[str]) -> None:
        """Declare ranks, as ``"B H E F M P"``."""
        for name in _split(names):
            if not name[:1].isupper():
                raise CascadeError(f"rank {name!r} must start with an upper-case letter", caller_position())
            if name in self.draft.ranks:
                raise CascadeError(f"rank {name} is declared twice", caller_position())
            self.draft.ranks.append(name)

    def batch(self, names: str | Iterable[str]) -> None:
        """Declare the batch ranks: present on every tensor and omitted in indices."""
        for name in _split(names):
            self._require_rank(name)
            self.draft.batch.append(name)

    def partition(self, rank: str, *parts: str) -> None:
        """Split ``rank`` into sub-ranks, outermost first: ``partition("M", "M1", "M0")``."""
        self._require_rank(rank)
        if len(parts) < 2:
            raise CascadeError("a partition needs at least two sub-ranks, as in partition('M', 'M1', 'M0')", caller_position())
        self.draft.partitions.append(Partition(rank, tuple(parts)))
        for part in parts:
            if part not in self.draft.ranks:
                self.draft.ranks.append(part)

    def _require_rank(self, name: str) -> None:
        if name not in self.draft.ranks:
            raise CascadeError(f"undeclared rank {name!r}; declared ranks: {' '.join(self.draft.ranks) or '(none)'}", caller_position())

    def inputs(self, *declarations: str) -> list[TensorHandle]:
        """Declare input tensors, as ``"Q[e,p]"``, and return their handles."""
        handles = []
        for declaration in declarations:
            name, ranks = self._declaration(declaration)
            self.draft.inputs[name] = ranks
            self.draft.input_positions[name] = caller_position()
            handles.append(TensorHandle(self, name))
        return handles

    def outputs(self, *declarations: str) -> None:
        """Declare the output tensors, as ``"AV[f,p]"``."""
        for declaration in declarations:
            name, ranks = self._declaration(declaration)
            self.draft.outputs.append((name, ranks, caller_position()))

    def _declaration(self, text: str) -> tuple[str, tuple[str, ...]]:
        name, _, rest = text.partition("[")
        variables = [v.strip() for v in rest.rstrip("]").split(",") if v.strip()]
        ranks = []
        for variable in variables:
            if variable.upper() not in self.draft.ranks:
                raise CascadeError(
                    f"rank variable {variable!r} has no declared rank {variable.upper()!r}; declared ranks: "
                    f"{' '.join(self.draft.ranks)}",
                    caller_position(),
                )
            ranks.append(variable.upper())
        return name.strip(), tuple(ranks)

    def tensors(self, names: str | Iterable[str]) -> list[TensorHandle]:
        """Handles for intermediate tensors, as ``"QK GM SN"``."""
        return [TensorHandle(self, name) for name in _split(names)]

    def variables(self, names: str | Iterable[str]) -> list[Affine]:
        """Rank variables (``"m1 m0"``) or rank sizes (``"M0"``) for building rank expressions."""
        return [Affine(AffineExpr((Term(1, (name,)),))) for name in _split(names)]

    def size(self, rank: str) -> Node:
        """Return the size of ``rank`` as a value, as ``E`` in ``SX[p] / E``."""
        return Node(RankSize(rank))

    def operator(
        self,
        name: str,
        function: Callable | None,
        parameters: Iterable[str] = ("x",),
        charged_as: dict[str, int] | str = "mul",
        identity: float | None = None,
        implementation: str | None = None,
    ) -> Callable[..., Node]:
        """Define a user-defined operator and return a function that applies it.

        ``charged_as`` names the built-in operators one application counts as
        (``{"exp": 1, "add": 1}``).  A module-level ``function`` is recorded as
        ``module:function`` so that the printed cascade can import it.
        """
        if implementation is None and function is not None and "<" not in getattr(function, "__qualname__", "<"):
            implementation = f"{function.__module__}:{function.__qualname__}"
        charge = ((charged_as, 1),) if isinstance(charged_as, str) else tuple(charged_as.items())
        definition = OperatorDef(name, tuple(parameters), charge, implementation, identity, function, caller_position())
        self.draft.operators.append(definition)
        self.context.operators[name] = definition

        def apply(*args) -> Node:
            return Node(Call(name, tuple(as_expr(arg) for arg in args)))

        return apply

    def iterate(self, variable: str, until: str) -> None:
        """Make ``variable`` iterative, stopping when ``until`` (``"m1 >= M1"``) holds."""
        position = caller_position()
        condition = self._filters(until, position)
        if len(condition) != 1:
            raise CascadeError("a stopping condition is one comparison, as 'm1 >= M1'", position)
        if variable.upper() not in self.draft.ranks:
            self.draft.ranks.append(variable.upper())
        self.draft.iteration = Iteration(variable, condition[0])
        self.draft.iteration_position = position

    def reference(self, output: str, function: str, *tensors: str, **options) -> None:
        """Declare the reference definition, as ``reference("AV", "softmax_attention", "Q", "K", "V")``."""
        values = tuple((key, str(value)) for key, value in options.items())
        self.draft.reference = Reference(output, function, tuple(tensors), values, caller_position())

    # -- Einsums ------------------------------------------------------------

    def einsum(self, output: Node | TensorHandle, expr, reduce=None, populate: str | None = None) -> None:
        """Add an Einsum of the cascade proper.

        Parameters
        ----------
        output : Node or TensorHandle
            The indexed output tensor (a bare handle for a scalar).
        expr : Node or number
            The right-hand side.
        reduce : str or (str, iterable of str), optional
            The reduction operator (``"max"``) for every rank variable the
            output lacks, or an operator and the variables it reduces.  By
            default those variables are sum-reduced.
        populate : str, optional
            ``"+="``, ``"max="`` or ``"min="`` to combine with the value already there.
        """
        self._add(output, expr, reduce, populate, initialization=False)

    def init(self, output: Node | TensorHandle, expr, reduce=None, populate: str | None = None) -> None:
        """Add an initialization Einsum, evaluated once before the recurrence."""
        self._add(output, expr, reduce, populate, initialization=True)

    def _add(self, output, expr, reduce, populate, initialization: bool) -> None:
        position = caller_position()
        if isinstance(output, TensorHandle):
            output = Node(Access(output.name, (), position))
        if not isinstance(output, Node) or not isinstance(output.expr, Access):
            raise CascadeError("the left-hand side of an Einsum is one tensor access, as QK['m', 'p']", position)
        right = as_expr(expr)
        reduces = []
        if reduce is not None:
            operator, variables = (reduce, None) if isinstance(reduce, str) else (reduce[0], tuple(reduce[1]))
            name = _REDUCE_NAMES.get(operator, operator)
            if variables is None:
                probe = make_einsum(output.expr, right, [], None, initialization, position)
                variables = probe.reduced_variables
            reduces = [ReduceAction(name, variables, position)]
        if populate not in _POPULATE_NAMES:
            raise CascadeError(f"unknown populate action {populate!r}; valid: =, +=, max=, min=", position)
        einsum = make_einsum(output.expr, right, reduces, _POPULATE_NAMES[populate], initialization, position)
        (self.draft.initialization if initialization else self.draft.einsums).append(einsum)

    def _index(self, item, position: SourcePosition) -> Index:
        if isinstance(item, Index):
            return item
        if isinstance(item, Affine):
            return Index(item.expr)
        if isinstance(item, int) and not isinstance(item, bool):
            return Index(AffineExpr((Term(item, ()),)))
        if not isinstance(item, str):
            raise CascadeError(f"an index is a rank expression (a string, an Affine or an int), not {item!r}", position)
        line = self._line(item, position)
        parser = ExpressionParser(line, self.context)
        try:
            expr = parser.affine()
            filters = ()
            if line.at(":"):
                line.take()
                filters = parser.filters()
            line.expect_end()
        except CascadeError as error:
            raise CascadeError(f"in index {item!r}: {error.reason}", position) from None
        return Index(expr, filters)

    def _filters(self, text: str, position: SourcePosition) -> tuple[Condition, ...]:
        line = self._line(text, position)
        try:
            conditions = ExpressionParser(line, self.context).filters()
            line.expect_end()
        except CascadeError as error:
            raise CascadeError(f"in condition {text!r}: {error.reason}", position) from None
        return conditions

    @staticmethod
    def _line(text: str, position: SourcePosition) -> Line:
        try:
            return Line(text, position.path, position.line)
        except CascadeError as error:
            raise CascadeError(f"in {text!r}: {error.reason}", position) from None

    def build(self) -> Cascade:
        """Check the statements and return the cascade.

        Raises
        ------
        CascadeError
            On the first problem, with the file and line of the builder call at fault.
        """
        return build_cascade(self.draft)


def _split(names: str | Iterable[str]) -> list[str]:
    return names.replace(",", " ").split() if isinstance(names, str) else list(names)
