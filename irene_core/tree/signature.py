"""Classes of identical nodes, computed from a record alone: what ``irene run`` measures once per class.

Two nodes are in one class when they have the same ``signature`` (written by the tracer: type, inputs,
parameters, configuration, children), the same model features, and children in the same classes in
the same order, so an inner node's class always stands for identical subtrees whatever the tracer
hashed.  A node without a signature (an older record, a tracer that writes none) is a class of its own,
and so is every ancestor of it.
"""

from __future__ import annotations

from itertools import count

from irene_core.tree.schema import MODEL_FEATURES, Node, TreeRecord


def node_classes(record: TreeRecord) -> list[list[Node]]:
    """The record's real (non-synthetic) nodes in classes of identical nodes.

    Classes are ordered by their first member in depth-first order (parents before children), and
    members likewise, so ``classes[i][0]`` is the class's representative.
    """
    index: dict[object, int] = {}
    unique = count()
    of_node: dict[int, int] = {}

    def classify(node: Node) -> int:
        children = tuple(classify(child) for child in node.real_children())
        if node.signature is None or -1 in children:
            of_node[id(node)] = -1
            return -1
        features = tuple(node.features.get(name) for name in MODEL_FEATURES)
        of_node[id(node)] = index.setdefault((node.signature, features, children), len(index))
        return of_node[id(node)]

    classify(record.root)
    classes: dict[object, list[Node]] = {}
    for node in record.nodes():
        key = of_node[id(node)]
        classes.setdefault(key if key >= 0 else ("alone", next(unique)), []).append(node)
    return list(classes.values())
