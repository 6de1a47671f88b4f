"""Architecture specs: a spatial accelerator with a 2D and a 1D array, a global buffer and DRAM.

Every quantity carries its unit in its name.  Operator costs give, for each
cascade operator an array can run, which unit actions one application charges
(for energy) and how many cycles it occupies a processing element (for
latency; by default the sum of the action counts).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from fusemax.errors import SpecError
from fusemax.specs import SourcedModel, StrictModel, load_spec_data, override_paths, validate

NonNegativeFloat = float


class OperatorCost(StrictModel):
    """Cost of one application of a cascade operator on one processing element."""

    actions: dict[str, PositiveInt] = Field(description="unit name -> actions charged per application")
    cycles: PositiveInt | None = Field(default=None, description="cycles per application; default: sum of actions")

    @property
    def cycles_per_application(self) -> int:
        return self.cycles if self.cycles is not None else sum(self.actions.values())


class Storage(StrictModel):
    """A register file or array-local buffer; energies are per word accessed, in pJ."""

    depth_words: PositiveInt
    read_energy_pj: float = Field(ge=0)
    write_energy_pj: float = Field(ge=0)
    note: str = ""


class Array2D(StrictModel):
    """A rows x cols grid of processing elements."""

    rows: PositiveInt
    cols: PositiveInt
    register_file: Storage
    operators: dict[str, OperatorCost]

    @property
    def processing_elements(self) -> int:
        return self.rows * self.cols


class Array1D(StrictModel):
    """A line of processing elements, optionally with a buffer that collects the 2D array's column results."""

    lanes: PositiveInt
    register_file: Storage
    buffer: Storage | None = None
    operators: dict[str, OperatorCost]

    @property
    def processing_elements(self) -> int:
        return self.lanes


class Arrays(StrictModel):
    array2d: Array2D
    array1d: Array1D


class Dram(StrictModel):
    """Off-chip memory; energy per access of ``access_bits``."""

    bandwidth_bytes_per_s: PositiveFloat
    access_bits: PositiveInt
    read_energy_pj: float = Field(ge=0)
    write_energy_pj: float = Field(ge=0)
    note: str = ""


class GlobalBuffer(StrictModel):
    """The on-chip SRAM; energy per row access of ``row_bits``."""

    capacity_bytes: PositiveInt
    row_bits: PositiveInt
    banks: PositiveInt
    read_energy_pj: float = Field(ge=0)
    write_energy_pj: float = Field(ge=0)
    energy_words_per_row: PositiveInt | None = Field(
        default=None, description="words one row access is charged for; default row_bits / word_bits"
    )
    note: str = ""


class Unit(StrictModel):
    """A functional unit: energy per action in pJ and area in square micrometres.

    ``area_included_in`` names another unit whose area already contains this
    one (the adder of a fused multiply-accumulate unit), so it adds no area.
    """

    energy_pj: float = Field(ge=0)
    area_um2: float = Field(ge=0, default=0.0)
    area_included_in: str | None = None


class BufferArea(StrictModel):
    """Area of one SRAM configuration, from a memory compiler or CACTI."""

    row_bits: PositiveInt
    rows: PositiveInt
    area_um2: float = Field(gt=0)


class AreaModel(StrictModel):
    """Areas of the parts that are not functional units, in square micrometres.

    A register file of ``depth`` words has area ``register_file_base_um2 +
    register_file_per_address_bit_um2 * ceil(log2(depth))``.  The global
    buffer's area is looked up in ``global_buffer_table`` by row width and row
    count, or fitted to it as a power law of its capacity when absent.
    """

    register_file_base_um2: float = Field(ge=0)
    register_file_per_address_bit_um2: float = Field(ge=0)
    network_um2_per_array_line: float = Field(ge=0, default=0.0)
    fixed_um2: float = Field(ge=0, default=0.0)
    global_buffer_table: list[BufferArea] = Field(default_factory=list)
    note: str = ""


class EnergyAccounting(StrictModel):
    """Bookkeeping choices of the energy model.

    ``register_files: one_instance`` charges register-file accesses of one
    processing element only, as the FuseMax artifact does; ``all_instances``
    charges every access.
    """

    register_files: Literal["one_instance", "all_instances"] = "all_instances"


class SimulationParameters(StrictModel):
    """Timing parameters of the cycle-level simulator (``fusemax.sim``) that the FuseMax paper leaves open.

    Each default is an estimate, and ``docs/simulator.md`` shows how simulated
    cycles depend on them.
    """

    dram_latency_cycles: int = Field(
        default=100,
        ge=0,
        description="cycles from a DRAM request to its first data: about 100 ns at 940 MHz, from HBM2 row "
        "activation and column access (tRCD + tCL, about 30 ns) plus controller, PHY and on-chip network",
    )
    global_buffer_ports: PositiveInt = Field(
        default=4,
        description="read/write ports of the global buffer, each moving one row per cycle. The FuseMax "
        "artifact's Accelergy buffer description has 4",
    )
    global_buffer_latency_cycles: int = Field(
        default=2, ge=0, description="cycles from a global-buffer access to its data: bank selection and one SRAM read"
    )
    hop_latency_cycles: int = Field(
        default=1, ge=0, description="cycles for one hop between neighbouring processing elements or arrays (registered links)"
    )


class Architecture(SourcedModel):
    """A validated spatial architecture spec."""

    name: str
    description: str = ""
    clock_hz: PositiveFloat
    word_bits: PositiveInt
    dram: Dram
    global_buffer: GlobalBuffer
    arrays: Arrays
    units: dict[str, Unit]
    energy_accounting: EnergyAccounting = EnergyAccounting()
    area: AreaModel | None = None
    simulation: SimulationParameters = SimulationParameters()

    @model_validator(mode="after")
    def _units_exist(self) -> "Architecture":
        for array_name in ("array2d", "array1d"):
            array = getattr(self.arrays, array_name)
            for operator_name, cost in array.operators.items():
                for unit in cost.actions:
                    if unit not in self.units:
                        raise ValueError(
                            f"arrays.{array_name}.operators.{operator_name} charges unknown unit {unit!r}; "
                            f"units: {', '.join(self.units)}"
                        )
        return self

    @property
    def word_bytes(self) -> float:
        return self.word_bits / 8

    def array(self, name: str) -> Array2D | Array1D:
        """Return the array called ``name`` (``array2d`` or ``array1d``)."""
        if name not in ("array2d", "array1d"):
            raise SpecError(f"{self.source}: unknown array {name!r}; arrays: array2d, array1d")
        return getattr(self.arrays, name)

    def size_names(self) -> dict[str, Any]:
        """Return every numeric key as a dotted path, for size expressions in mappings."""
        names: dict[str, Any] = {}
        _flatten(self.model_dump(), "", names)
        return names


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            _flatten(value, f"{prefix}{key}.", out)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = data


def load_architecture(
    name_or_path: str, overrides: list[tuple[str, str]] | None = None, variant: str = "paper"
) -> Architecture:
    """Load an architecture spec by path or shipped name, applying ``(path, value)`` overrides.

    Raises
    ------
    SpecError
        On a missing file, invalid YAML, an unknown key or an invalid value,
        with the YAML path of the problem.

    Examples
    --------
    >>> arch = load_architecture("fusemax-cloud", [("arrays.array2d.rows", "128")])
    >>> arch.arrays.array2d.rows, arch.global_buffer.capacity_bytes
    (128, 16777216)
    """
    data, source = load_spec_data(name_or_path, "archs", overrides, variant)
    return validate(Architecture, data, source, override_paths(overrides))
