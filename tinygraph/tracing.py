"""The recorder hook ``tinygraph.compile`` traces a step through (see ``tinygraph.jit``).

``RECORDERS`` is empty except while ``compile`` traces a step, so each hook costs one check of an
empty list. The engine calls, when it is not empty, the last recorder's methods (which ignore, or
for ``backward`` decline through ``tracing()``, calls from threads other than the tracing one):

- ``node(op, inputs, out)`` from ``ops.base.apply``, for every node created;
- ``backward(output, grad, retain_graph, create_graph)`` from ``autograd.backward`` (it runs that
  backward itself, recording the walk); ``gradient(...)`` from ``compute_gradient`` called directly
  (``grad_of``), which a trace refuses;
- ``item(tensor, value)`` from ``Tensor.item`` (a traced value read into Python);
- ``leaf(tensor, source)`` from ``Tensor.__init__`` (a leaf copied from an array);
- ``optimizer(opt, method, args)`` from ``Optimizer.step`` / ``zero_grad``, which runs the call.

``CALLS`` is the same kind of hook for ``tinygraph.export``: empty except while an export traces a
module. ``Module.__call__`` then hands the call to the last entry, ``CALLS[-1](module, args,
kwargs)``, which returns the call's result: a module that exports itself as its own ONNX nodes (an
RNN layer as ONNX's ``LSTM``) is recorded as one node instead of being traced op by op.
"""
RECORDERS = []
CALLS = []
