"""Build a small expression, walk its explicit graph and check its gradients numerically."""
import numpy as np

import tinygraph as tg


def add_arguments(parser):
    parser.add_argument("--seed", type=int, default=0)


def run(args):
    rng = np.random.default_rng(args.seed)
    x = tg.tensor(rng.standard_normal((4, 3)), name="x")
    w = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True, name="w")
    with tg.scope("layer"):
        loss = tg.cross_entropy(x @ w, np.array([0, 1, 1, 0]))
    graph = loss.graph()
    print(graph)
    for i, node in enumerate(graph.nodes):
        print(f"  {i:2d} {node.op.name if node.op else 'leaf':12s} {str(node.shape):8s} {node.scope}")
    loss.backward()
    print("loss", round(loss.item(), 6), "grad norm", round(float(np.linalg.norm(w.grad)), 6))
    print("gradcheck:", tg.gradcheck(lambda w: tg.cross_entropy(x @ w, np.array([0, 1, 1, 0])), [w]))
    return 0
