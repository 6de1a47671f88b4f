"""Readable report of ``fusemax passes``, written from its JSON object."""

from __future__ import annotations


def format_report(result: dict) -> str:
    """Format the object ``fusemax passes --json`` prints as a readable report."""
    lines = [f"{result['cascade']}: minimum passes over each rank, valid for every mapping"]
    width = max(len(rank) for rank in result["passes"]) if result["passes"] else 4
    for rank, passes in result["passes"].items():
        lines.append(f"  {rank:<{width}}  {passes}")

    detailed = [rank for rank, entry in result["ranks"].items() if entry["passes"] > 1 or len(result["ranks"]) == 1]
    for rank in detailed:
        lines.append("")
        lines.extend(_rank_section(rank, result["ranks"][rank], result.get("arch")))

    if result["rewrites"] or "rewrite_blocked" in result:
        lines.append("")
        lines.append(f"Rewrites that remove passes over {result['rewrite_rank']}:")
        for step in result["rewrites"]:
            extra = ", ".join(f"{name} {count}" for name, count in step["extra_operations"].items()) or "none"
            lines.append(
                f"  {step['technique']}: {step['passes_before']} -> {step['passes_after']} passes; "
                f"extra operations per batch and head: {extra}"
            )
        if "rewrite_blocked" in result:
            lines.append(f"  iterative construction is not possible: {result['rewrite_blocked']}")
        else:
            lines.append(f"  ({result['rewrite_rank']}1 is the number of tiles the 1-pass cascade walks {result['rewrite_rank']} in.)")
    return "\n".join(lines)


def _rank_section(rank: str, entry: dict, arch: dict | None) -> list[str]:
    lines = [f"{rank}: {entry['passes']} pass(es)"]
    for number in range(1, entry["passes"] + 1):
        names = [e["einsum"] for e in entry["einsums"] if e["sweeps"] and e["level"] == number]
        lines.append(f"  pass {number}: {', '.join(names)}")
    for extra in entry["extra_passes"]:
        lines.append(
            f"  pass {extra['pass']} is forced: {extra['einsum']} needs {extra['waits_for']}, complete only after "
            f"pass {extra['pass'] - 1} because {extra['reduction']} needs the whole fiber"
        )

    lines.append("  Einsums:")
    name_width = max(len(_label(e)) for e in entry["einsums"])
    for einsum in entry["einsums"]:
        lines.append(f"    {_label(einsum):<{name_width}}  {einsum['reason']}")

    repeated = [f"{tensor} ({count})" for tensor, count in entry["tensors"].items() if count > 1]
    if repeated:
        lines.append(f"  fibers every schedule touches in more than one pass: {', '.join(repeated)}")
    if "footprint" in entry:
        lines.extend(_footprint_lines(entry["footprint"]))
    if "spill" in entry:
        lines.extend(_spill_lines(rank, entry["spill"], arch))
    return lines


def _label(einsum: dict) -> str:
    return f"init {einsum['einsum']}" if einsum["init"] else einsum["einsum"]


def _footprint_lines(footprint: dict) -> list[str]:
    row = ", ".join(footprint["row_ranks"])
    per_row = f"per row of {row}" if row else "in all"
    lines = [f"  live between passes ({per_row}, in words):"]
    for live in footprint["live"]:
        tensors = ", ".join(live["tensors"]) or "nothing that every schedule keeps"
        lines.append(f"    after pass {live['after_pass']}: {tensors} = {live['per_row_words']}")
    lines.append(
        f"  live footprint: {footprint['per_row_words']} words per row, {footprint['total_words']} words for all rows"
    )
    lines.append(
        f"  spilling it instead adds {footprint['spill_traffic_words']} words of memory traffic (writes and reads); "
        f"compulsory traffic is {footprint['compulsory_traffic_words']} words"
    )
    return lines


def _spill_lines(rank: str, spill: dict, arch: dict | None) -> list[str]:
    sizes = ", ".join(f"{name}={value}" for name, value in spill["sizes"].items())
    lines = [f"  at {sizes}:"]
    if spill["per_row_words"] is None:
        lines.append("    the live footprint needs more rank sizes; give --seq-len, --shape or --sizes")
    else:
        text = f"    live footprint {spill['per_row_words']} words per row"
        if spill["total_words"] is not None:
            text += f", {spill['total_words']} words for all rows"
        lines.append(text)
    if spill["spill_traffic_words"] is not None:
        lines.append(f"    spill traffic {spill['spill_traffic_words']} words")
    if arch is None:
        return lines

    if spill["resident_bytes"] is not None:
        verdict = "does not fit" if spill["spills"] else "fits"
        lines.append(
            f"    {spill['rows']} row(s) on chip: {spill['resident_bytes']:.0f} bytes of the "
            f"{spill['capacity_bytes']}-byte global buffer of {arch['name']}, so it {verdict}"
        )
    length = " = ".join(spill["length_ranks"])
    if spill["fits_up_to"] is None:
        lines.append(f"    the live footprint does not grow with {length}; it fits at every length")
    elif spill["fits_up_to"] == 0:
        lines.append(f"    the live footprint of {spill['rows']} row(s) exceeds the global buffer at every length")
    elif spill["rows"] == 1:
        lines.append(f"    fits up to {length} = {spill['fits_up_to']}; beyond that every mapping spills")
    else:
        lines.append(
            f"    fits up to {length} = {spill['fits_up_to']}; beyond that a mapping with "
            f"{spill['rows']} rows on chip spills"
        )
    if spill["all_rows_fit_up_to"] is not None:
        lines.append(f"    every row of every batch and head fits on chip at once up to {length} = {spill['all_rows_fit_up_to']}")
    return lines
