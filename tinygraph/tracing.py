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
"""
RECORDERS = []
