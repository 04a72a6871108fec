"""Networks: nodes (cores, synapses, neuron layers, ...) joined by address-event routing.

A :class:`Network` is a directed graph of named nodes (:mod:`.nodes`, :mod:`.core`) and
edges ``(source, destination)``. Time is discrete with step ``dt``; one step of the
network, on one sample, is (the semantics every NIR importer can be compared with,
Pedersen et al., Nat. Commun. 15:8122, 2024; snnTorch's and Norse's importers):

1. the nodes run once each, in graph order: a depth-first search from the input node
   marks every edge that closes a cycle as *recurrent*; the remaining edges form an
   acyclic graph whose topological order (ties broken by the order the nodes were given)
   is the graph order;
2. a node's input is the sum of its incoming edges (fan-in summed): a forward edge
   carries its source's output of this step, a recurrent edge the source's output of the
   previous step (zeros at ``t = 0``);
3. the input node receives the data of the step, and the output node's value is the
   network's output. All states start at zero.

Routing between cores is address-event: an edge delivers the events (nonzero entries)
of its source; integer delays are :class:`.nodes.Delay` nodes. The simulation is a
``lax.scan`` over time of the step, ``vmap``-ed over a batch: ``net.run(x, key)``, ``x``
of shape ``(T, *in_shape)`` or ``(T, B, *in_shape)``. With a ``key``, each step and node
draws its own read noise (independent over samples of a batch), or, for synapses with
``xbar.PerCall()`` read noise, one draw per run shared by all steps and samples
(:meth:`Network.realise`).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from xbar import PerCall


def graph_order(names, edges, source: str):
    """``(order, recurrent)``: the graph order of ``names`` and the set of edges that close
    a cycle (module docstring), from a depth-first search starting at ``source``."""
    index = {n: i for i, n in enumerate(names)}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for u, v in edges:
        succ[u].append(v)
    recurrent = set()
    colour = dict.fromkeys(names, 0)  # 0 new, 1 on the stack, 2 done
    roots = [source] + [n for n in names if n != source]
    for root in roots:
        if colour[root]:
            continue
        stack = [(root, iter(succ[root]))]
        colour[root] = 1
        while stack:
            u, it = stack[-1]
            v = next(it, None)
            if v is None:
                colour[u] = 2
                stack.pop()
            elif colour[v] == 1:
                recurrent.add((u, v))
            elif colour[v] == 0:
                colour[v] = 1
                stack.append((v, iter(succ[v])))
    indeg = dict.fromkeys(names, 0)
    for u, v in edges:
        if (u, v) not in recurrent:
            indeg[v] += 1
    ready = sorted((n for n in names if indeg[n] == 0), key=index.get)
    order = []
    while ready:
        u = ready.pop(0)
        order.append(u)
        for v in succ[u]:
            if (u, v) in recurrent:
                continue
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
                ready.sort(key=index.get)
    return tuple(order), frozenset(recurrent)


class Network(eqx.Module):
    """A network of nodes and edges (module docstring). Build with :meth:`create`.

    Fields: ``nodes`` (name -> node), ``edges``, ``order`` (graph order), ``recurrent``
    (edges read from the previous step), ``input`` / ``output`` (node names), ``dt`` [s],
    ``crossbar`` (the :class:`xbar.networks.CrossbarConfig` its synapses were mapped
    with, or None), ``metadata`` (NIR metadata kept for export)."""

    nodes: dict[str, Any]
    dt: float
    crossbar: Any
    edges: tuple[tuple[str, str], ...] = eqx.field(static=True)
    order: tuple[str, ...] = eqx.field(static=True)
    recurrent: frozenset = eqx.field(static=True)
    input: str = eqx.field(static=True)
    output: str = eqx.field(static=True)
    metadata: tuple = eqx.field(static=True, default=())

    @classmethod
    def create(
        cls,
        nodes: dict[str, Any],
        edges,
        *,
        input: str,
        output: str,
        dt: float,
        crossbar=None,
        metadata: dict | None = None,
    ) -> Network:
        """Check names and shapes and fix the graph order. Raises ``ValueError`` naming
        the node for an unknown name, or the edge for a shape mismatch."""
        nodes = dict(nodes)
        edges = tuple((str(u), str(v)) for u, v in edges)
        for name in (input, output):
            if name not in nodes:
                raise ValueError(f"network has no node named {name!r} (input/output)")
        for u, v in edges:
            for n in (u, v):
                if n not in nodes:
                    raise ValueError(f"edge ({u!r}, {v!r}) names unknown node {n!r}")
        if len(set(edges)) != len(edges):
            raise ValueError("duplicate edges")
        order, recurrent = graph_order(list(nodes), edges, input)
        for u, v in edges:
            src, dst = nodes[u].out_shape, nodes[v].in_shape
            if tuple(src) != tuple(dst):
                raise ValueError(
                    f"edge ({u!r}, {v!r}): node {u!r} outputs shape {tuple(src)}, node "
                    f"{v!r} expects input of shape {tuple(dst)}"
                )
        meta = tuple(sorted((metadata or {}).items(), key=lambda kv: kv[0]))
        return cls(
            nodes=nodes,
            dt=dt,
            crossbar=crossbar,
            edges=edges,
            order=order,
            recurrent=recurrent,
            input=input,
            output=output,
            metadata=meta,
        )

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.nodes[self.input].in_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.nodes[self.output].out_shape)

    def _sources(self):
        return sorted({u for u, _ in self.recurrent})

    def init_state(self, dtype=None):
        """``(node_states, previous_outputs)`` of one sample, all zero."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        states = {n: self.nodes[n].init_state(dtype) for n in self.order}
        prev = {u: jnp.zeros(self.nodes[u].out_shape, dtype) for u in self._sources()}
        return states, prev

    def step(self, carry, x, key: PRNGKeyArray | None = None):
        """One time step of one sample: ``(carry, x) -> (carry, outputs)``, ``outputs``
        the dict of every node's output."""
        carry, out, _ = self._step(carry, x, key)
        return carry, out

    def _step(self, carry, x, key):
        states, prev = carry
        incoming: dict[str, list] = {n: [] for n in self.order}
        for u, v in self.edges:
            incoming[v].append((u, (u, v) in self.recurrent))
        out: dict[str, Array] = {}
        inputs: dict[str, Array] = {}
        new_states = {}
        for i, n in enumerate(self.order):
            node = self.nodes[n]
            if n == self.input:
                inp = jnp.asarray(x)
                if inp.shape != tuple(node.in_shape):
                    raise ValueError(
                        f"input of node {n!r} must have shape {tuple(node.in_shape)} per step "
                        f"and sample, got {inp.shape}"
                    )
                for u, rec in incoming[n]:
                    inp = inp + (prev[u] if rec else out[u])
            else:
                terms = [prev[u] if rec else out[u] for u, rec in incoming[n]]
                if terms:
                    inp = terms[0]
                    for t in terms[1:]:
                        inp = inp + t
                else:
                    inp = jnp.zeros(node.in_shape, jnp.asarray(x).dtype)
            k = None if key is None else jax.random.fold_in(key, i)
            inputs[n] = inp
            new_states[n], out[n] = node.step(states[n], inp, k)
        new_prev = {u: out[u] for u in prev}
        return (new_states, new_prev), out, (inputs, new_states)

    def _batched(self, x):
        x = jnp.asarray(x)
        nd = len(self.in_shape)
        if x.ndim == nd + 1:
            return x, False
        if x.ndim == nd + 2:
            return x, True
        raise ValueError(
            f"x must have shape (T, *in_shape) or (T, B, *in_shape) with in_shape "
            f"{self.in_shape}, got {x.shape}"
        )

    def trace(self, x, key: PRNGKeyArray | None = None, nodes=None) -> dict[str, Array]:
        """Outputs of the named ``nodes`` (default all) over time: name -> ``(T, [B,]
        *shape)``. ``x`` as in :meth:`run`."""
        return self.simulate(x, key, nodes=nodes)[0]

    def simulate(
        self, x, key: PRNGKeyArray | None = None, nodes=None, *, inputs=(), states=()
    ) -> tuple[dict, dict, dict]:
        """``(outputs, node_inputs, node_states)`` over time, each name -> ``(T, [B,] ...)``:
        the outputs of ``nodes`` (default all), the summed inputs of the nodes named in
        ``inputs`` and the states (after each step) of the nodes named in ``states``."""
        x, _ = self._batched(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        keep = tuple(self.order if nodes is None else nodes)
        for n in (*keep, *inputs, *states):
            if n not in self.nodes:
                raise ValueError(f"network has no node named {n!r}")
        # one compiled program per network structure and recorded set (filter_jit caches
        # on the static fields), reused by later calls and by other parameter values
        return _simulate(self, x, key, keep, tuple(inputs), tuple(states))

    def realise(self, key: PRNGKeyArray | None) -> Network:
        """The network as it is for one run: every node with a per-call read-noise draw
        (synapses with ``xbar.PerCall()`` read noise) takes it with its own key from
        ``key``; nodes without one are unchanged (None: the network itself)."""
        if key is None:
            return self
        nodes = {
            n: (node.realise(jax.random.fold_in(key, i)) if hasattr(node, "realise") else node)
            for i, (n, node) in enumerate(self.nodes.items())
        }
        return eqx.tree_at(lambda net: net.nodes, self, nodes)

    def _needs_realise(self) -> bool:
        return any(
            isinstance(getattr(getattr(node, "synapses", node), "read_noise", None), PerCall)
            for node in self.nodes.values()
        )

    def _simulate(self, x, key, keep, inputs, states):
        x, batched = self._batched(x)
        net = self
        if key is not None and self._needs_realise():
            # one read-noise draw per run, shared by every step and sample (xbar.PerCall)
            k_run, key = jax.random.split(key)
            net = self.realise(k_run)

        def one(xs, k):
            t = xs.shape[0]
            keys = None if k is None else jax.random.split(k, t)

            def body(carry, inp):
                xt, kt = inp
                carry, out, (ins, sts) = net._step(carry, xt, kt)
                rec = (
                    {n: out[n] for n in keep},
                    {n: ins[n] for n in inputs},
                    {n: sts[n] for n in states},
                )
                return carry, rec

            _, ys = jax.lax.scan(body, net.init_state(xs.dtype), (xs, keys))
            return ys

        if not batched:
            return one(x, key)
        b = x.shape[1]
        keys = None if key is None else jax.random.split(key, b)
        return jax.vmap(one, in_axes=(1, 0 if key is not None else None), out_axes=1)(x, keys)

    def run(self, x, key: PRNGKeyArray | None = None) -> Array:
        """Simulate ``x`` of shape ``(T, *in_shape)`` or ``(T, B, *in_shape)``; returns the
        output node's values ``(T, [B,] *out_shape)``. ``key`` draws read noise (None:
        noiseless reads)."""
        return self.trace(x, key, nodes=(self.output,))[self.output]


@eqx.filter_jit
def _simulate(net, x, key, keep, inputs, states):
    return net._simulate(x, key, keep, inputs, states)


__all__ = ["Network", "graph_order"]
