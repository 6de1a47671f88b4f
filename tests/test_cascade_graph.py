"""The dependency graph: edges, loop-carried and terminal reads, and its DOT and JSON exports."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from einsum_cascades.graph import dependency_graph, recurrence_positions, to_dot, to_json
from einsum_cascades.library import library_names, load_library_cascade


@pytest.fixture(scope="module")
def one_pass_graph():
    return dependency_graph(load_library_cascade("attention-1pass"))


def edges(graph, source, target):
    return [data for s, t, data in graph.edges(data=True) if (s, t) == (source, target)]


def test_nodes(one_pass_graph):
    kinds = nx.get_node_attributes(one_pass_graph, "kind")
    assert {node for node, kind in kinds.items() if kind == "input"} == {"Q", "K", "V"}
    assert "init:RM" in one_pass_graph
    assert one_pass_graph.nodes["init:RM"]["initialization"]
    assert one_pass_graph.nodes["BQK"]["label"] == "BQK[m1, m0, p] = Q[e, p] * BK[e, m1, m0]"


def test_input_edges(one_pass_graph):
    assert sorted(one_pass_graph.successors("K")) == ["init:BK"]
    assert [d["access"] for d in edges(one_pass_graph, "K", "init:BK")] == ["K[e, m1*M0 + m0]"]


def test_loop_carried_self_edge(one_pass_graph):
    (self_edge,) = edges(one_pass_graph, "RM", "RM")
    assert self_edge["loop_carried"]
    assert self_edge["access"] == "RM[m1, p]"
    (initial,) = edges(one_pass_graph, "init:RM", "RM")
    assert not initial["loop_carried"]


def test_same_iterate_edge(one_pass_graph):
    reads = {d["access"]: d["loop_carried"] for d in edges(one_pass_graph, "RM", "PRM")}
    assert reads == {"RM[m1, p]": True, "RM[m1 + 1, p]": False}


def test_initialization_does_not_feed_later_iterates(one_pass_graph):
    assert edges(one_pass_graph, "init:RM", "SLN") == []


def test_terminal_edges(one_pass_graph):
    (read,) = edges(one_pass_graph, "RNV", "AV")
    assert read["terminal"]
    assert not read["loop_carried"]


def test_graph_without_loop_carried_edges_is_acyclic(one_pass_graph):
    forward = nx.DiGraph([(s, t) for s, t, d in one_pass_graph.edges(data=True) if not d["loop_carried"]])
    assert nx.is_directed_acyclic_graph(forward)


def test_recurrence_positions():
    assert recurrence_positions(load_library_cascade("attention-1pass")) == {"RM": 0, "RD": 0, "RNV": 1}
    assert recurrence_positions(load_library_cascade("attention-3pass")) == {}


def test_dot_export(one_pass_graph):
    text = to_dot(one_pass_graph)
    assert text.startswith('digraph "attention-1pass" {')
    assert '"Q" [shape=box, label="Q"];' in text
    assert '"RM" -> "RM" [label="RM[m1, p]", style="dashed"];' in text
    assert '"RNV" -> "AV" [label="RNV[f, M1, p]", style="bold"];' in text
    assert text.rstrip().endswith("}")


def test_dot_quotes_labels():
    text = to_dot(dependency_graph(load_library_cascade("linear-attention")))
    assert '"init:' not in text
    assert text.count("{") == text.count("}")


def test_json_export_reads_back(one_pass_graph):
    data = json.loads(to_json(one_pass_graph))
    assert data["graph"]["name"] == "attention-1pass"
    restored = nx.node_link_graph(data, edges="edges")
    assert set(restored.nodes) == set(one_pass_graph.nodes)
    assert restored.number_of_edges() == one_pass_graph.number_of_edges()


@pytest.mark.parametrize("name", library_names())
def test_every_library_graph_exports(name):
    graph = dependency_graph(load_library_cascade(name))
    assert to_dot(graph).count("->") == graph.number_of_edges()
    assert json.loads(to_json(graph))["directed"] is True
