"""NIR import and export: ``from_nir(graph, dt=...)`` -> :class:`.Network`, ``to_nir(net)``.

NIR (Neuromorphic Intermediate Representation; Pedersen et al., Nat. Commun. 15:8122,
2024; package ``nir``) describes a network as continuous-time nodes and edges, without a
time step. This backend discretises it as follows (the convention of snnTorch's
importer, and of Norse's for graphs with ``r = 1``), one call per time step:

* nodes run in graph order, fan-in edges are summed, an edge that closes a cycle reads its
  source's output of the previous step (zeros at ``t = 0``), and all states start at 0
  (:mod:`.network`);
* ``LI``/``LIF``: ``v <- v + (dt/tau) (v_leak - v + r x)``; spike ``z = 1`` where
  ``v > v_threshold`` (strict); ``v <- v_reset`` where ``z`` (same step);
* ``CubaLI``/``CubaLIF``: ``I <- I + (dt/tau_syn)(-I + w_in x)`` first, then the membrane
  with the new ``I``;
* ``I``/``IF``: ``v <- v + dt r x`` (snnTorch and Norse add ``r x`` per step without
  ``dt``: read a graph from them with ``r`` divided by ``dt``);
* ``Delay``: integer multiples of ``dt`` only (otherwise an error);
* ``Affine``/``Linear`` ``y = W x (+ b)``; ``Scale``; ``Threshold`` (strict);
  ``Conv1d``/``Conv2d`` with PyTorch semantics; ``SumPool2d``/``AvgPool2d``;
  ``Flatten`` (dims index the batch-less shape); nested ``NIRGraph`` nodes (inlined, their
  nodes named ``"graph.node"``; an edge to or from the subgraph's name reaches its single
  ``Input``/``Output`` node).

Options for graphs from frameworks with other conventions: ``integrator="exact"``
(:class:`.neurons.ExactDecay`, ``dt/tau -> 1 - exp(-dt/tau)``) and ``reset="subtract"``
(:class:`.neurons.ResetBySubtraction`). Objects are accepted as well as these names.

With ``crossbar=`` a :class:`.config.CrossbarConfig`, every Affine/Linear/Conv node is
programmed onto crossbar tiles (:mod:`.core`); ``crossbar=None`` keeps exact weights.

Export writes nodes named ``input`` and ``output``, full-size parameter arrays, and
metadata: the graph's ``dt`` [s], and per neuron node ``reset`` (``"value"`` or
``"subtract"``) and ``integrator`` (``"euler"`` or ``"exact"``), and what NIR has no field
for: a refractory period (``xbar.t_ref`` [s], per neuron) and a finite membrane register
(``xbar.precision``, JSON; other importers ignore both); for a crossbar network
the configuration (``xbar.crossbar``, JSON) and the programming key (``xbar.key``).
Reading these back is a convenience (NIR tells backends not to rely on metadata):
``from_nir(to_nir(net))`` rebuilds the same network, the same programmed devices
included.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pathlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

from .config import CrossbarConfig
from .core import ConvSynapses, Core, CrossbarSynapses, IdealSynapses
from .network import Network, graph_order
from .neurons import (
    IF,
    LI,
    LIF,
    AbstractIntegrator,
    AbstractReset,
    CubaLI,
    CubaLIF,
    ExactDecay,
    ForwardEuler,
    Integrator,
    ResetBySubtraction,
    ResetToValue,
)
from .nodes import Delay, Flatten, Identity, NeuronLayer, Pool2d, Scale, Threshold
from .spikes import AbstractSpikeFunction, Heaviside

_RESETS = {"value": ResetToValue, "subtract": ResetBySubtraction}
_INTEGRATORS = {"euler": ForwardEuler, "exact": ExactDecay}


class _FromMetadata:
    """Default of ``from_nir(crossbar=...)``: the configuration recorded by ``to_nir``."""

    def __repr__(self):
        return "FROM_METADATA"


FROM_METADATA = _FromMetadata()


def _reset_obj(reset, where: str) -> AbstractReset:
    if isinstance(reset, AbstractReset):
        return reset
    if isinstance(reset, (str, bytes)):
        r = reset.decode() if isinstance(reset, bytes) else reset
        if r in _RESETS:
            return _RESETS[r]()
    raise ValueError(
        f"{where}: reset must be 'value', 'subtract' or an AbstractReset, got {reset!r}"
    )


def _integrator_obj(integ, where: str) -> AbstractIntegrator:
    if isinstance(integ, AbstractIntegrator):
        return integ
    if isinstance(integ, (str, bytes)):
        s = integ.decode() if isinstance(integ, bytes) else integ
        if s in _INTEGRATORS:
            return _INTEGRATORS[s]()
    raise ValueError(
        f"{where}: integrator must be 'euler', 'exact' or an AbstractIntegrator, got {integ!r}"
    )


def _reset_name(reset) -> str:
    if isinstance(reset, ResetToValue):
        return "value"
    if isinstance(reset, ResetBySubtraction):
        return "subtract"
    raise ValueError(f"to_nir: reset {type(reset).__name__} has no NIR name")


def _integrator_name(integ) -> str:
    if isinstance(integ, ForwardEuler):
        return "euler"
    if isinstance(integ, ExactDecay):
        return "exact"
    raise ValueError(f"to_nir: integrator {type(integ).__name__} has no NIR name")


# ---- description of modules as JSON (crossbar configuration in metadata) ---------------
def describe(obj) -> Any:
    """A JSON-serialisable description of a module tree of the xbar namespace (plain
    modules, floats, arrays, dicts, tuples); :func:`rebuild` inverts it exactly."""
    if isinstance(obj, eqx.Module):
        cls = type(obj)
        fields = {f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return {"__class__": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    if isinstance(obj, dict):
        return {"__dict__": {str(k): describe(v) for k, v in obj.items()}}
    if isinstance(obj, (tuple, list)):
        return {"__tuple__": [describe(v) for v in obj]}
    if isinstance(obj, (jax.Array, np.ndarray, np.generic)):
        a = np.asarray(obj)
        return {"__array__": a.tolist(), "dtype": str(a.dtype), "shape": list(a.shape)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError(f"cannot describe a {type(obj).__name__} in NIR metadata")


def rebuild(desc) -> Any:
    """The object described by :func:`describe` (classes only from the xbar namespace)."""
    if isinstance(desc, dict):
        if "__class__" in desc:
            mod, name = desc["__class__"].split(":")
            if mod.split(".")[0] != "xbar":
                raise ValueError(f"metadata names a class outside xbar: {desc['__class__']!r}")
            cls = getattr(importlib.import_module(mod), name)
            return cls(**{k: rebuild(v) for k, v in desc["fields"].items()})
        if "__dict__" in desc:
            return {k: rebuild(v) for k, v in desc["__dict__"].items()}
        if "__tuple__" in desc:
            return tuple(rebuild(v) for v in desc["__tuple__"])
        if "__array__" in desc:
            a = np.asarray(desc["__array__"], dtype=desc["dtype"]).reshape(desc["shape"])
            return jnp.asarray(a)
    return desc


def crossbar_from_metadata(graph: nir.NIRGraph) -> CrossbarConfig | None:
    """The :class:`CrossbarConfig` that ``to_nir`` wrote into ``graph``'s metadata, or
    None when there is none."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    text = meta.get("xbar.crossbar")
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    return rebuild(json.loads(str(text)))


# ---- import --------------------------------------------------------------------------
def _flatten_graph(graph: nir.NIRGraph, prefix: str, subgraphs: list):
    """Inline nested graphs: ``(nodes, edges, inputs, outputs)`` with dotted names."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ends: dict[str, tuple[str, str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, ins, outs = _flatten_graph(node, full + ".", subgraphs)
            if len(ins) != 1 or len(outs) != 1:
                raise ValueError(
                    f"node {full!r}: a nested graph needs exactly one Input and one Output "
                    f"node, found {len(ins)} and {len(outs)}"
                )
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            ends[name] = (ins[0], outs[0])
            subgraphs.append((full, ins[0], outs[0], dict(node.metadata or {})))
        else:
            nodes[full] = node

    def resolve(n, end):
        if n in ends:
            return ends[n][end]
        if prefix + n in nodes:
            return prefix + n
        raise ValueError(f"edge names unknown node {prefix + n!r}")

    for u, v in graph.edges:
        edges.append((resolve(u, 1), resolve(v, 0)))
    ins = [prefix + n for n, x in graph.nodes.items() if isinstance(x, nir.Input)]
    outs = [prefix + n for n, x in graph.nodes.items() if isinstance(x, nir.Output)]
    return nodes, edges, ins, outs


def _arr(node, field: str, name: str):
    val = getattr(node, field, None)
    if val is None:
        raise ValueError(f"node {name!r} ({type(node).__name__}): field {field!r} is missing")
    a = np.asarray(val)
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"node {name!r}: field {field!r} must be numeric, got {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"node {name!r}: field {field!r} must be finite")
    return a


def _layer_shape(node, fields, name):
    arrs = {f: _arr(node, f, name) for f in fields}
    shapes = [a.shape for a in arrs.values() if a.ndim > 0]
    shape = max(shapes, key=len) if shapes else ()
    for f, a in arrs.items():
        if a.ndim > 0 and a.shape != shape:
            raise ValueError(
                f"node {name!r}: field {f!r} has shape {a.shape}, expected {shape} (the "
                f"shape of the other parameters)"
            )
    return shape, {f: jnp.asarray(a) for f, a in arrs.items()}


def _check_pos(name, field, a):
    if np.any(np.asarray(a) <= 0):
        raise ValueError(f"node {name!r}: field {field!r} must be positive, got {np.asarray(a)}")


def _node_meta(node) -> dict:
    m = getattr(node, "metadata", None)
    return m if isinstance(m, dict) else {}


def from_nir(
    graph,
    *,
    dt: float | None = None,
    crossbar=FROM_METADATA,
    reset=None,
    integrator=None,
    key=None,
    spike_fn: AbstractSpikeFunction | None = None,
) -> Network:
    """A :class:`Network` from a NIR graph (a ``nir.NIRGraph`` or a file path).

    Args:
        graph: the graph, or the path of a NIR (HDF5) file.
        dt: time step [s]; required unless the graph's metadata holds one (written by
            :func:`to_nir`).
        crossbar: a :class:`CrossbarConfig` to map every Affine/Linear/Conv node onto
            programmed crossbar tiles, or None for exact weights. Default: the configuration
            in the graph's metadata (:func:`crossbar_from_metadata`), else None.
        reset: ``"value"`` (default) / ``"subtract"`` or an ``AbstractReset``; default:
            each node's metadata, else ``"value"``.
        integrator: ``"euler"`` (default) / ``"exact"`` or an ``AbstractIntegrator``;
            default: each node's metadata, else ``"euler"``.
        key: PRNG key for device variability and programming (needed with a crossbar,
            unless the metadata holds the key ``to_nir`` wrote).
        spike_fn: the spike function of spiking nodes and Threshold (default
            :class:`Heaviside`; a surrogate for training).

    Raises ``ValueError`` naming the node and the field for an unsupported node type, a
    non-integral delay, an inconsistent shape or a parameter of the wrong size.
    """
    if isinstance(graph, (str, pathlib.Path)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"graph must be a nir.NIRGraph or a path, got {type(graph).__name__}")
    gmeta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None:
        if "dt" not in gmeta:
            raise ValueError("dt is required: NIR graphs carry no time step (dt > 0 in s)")
        dt = float(np.asarray(gmeta["dt"]))
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite time step (0, inf) s, got {dt!r}")
    if crossbar is FROM_METADATA:
        crossbar = crossbar_from_metadata(graph)
    if crossbar is not None and not isinstance(crossbar, CrossbarConfig):
        raise ValueError(
            f"crossbar must be a CrossbarConfig or None, got {type(crossbar).__name__}"
        )
    if crossbar is not None and key is None:
        if "xbar.key" not in gmeta:
            raise ValueError("from_nir needs a key to program a crossbar configuration")
        data = jnp.asarray(np.asarray(gmeta["xbar.key"]), jnp.uint32)
        impl = gmeta.get("xbar.key_impl", "threefry2x32")
        impl = impl.decode() if isinstance(impl, bytes) else str(impl)
        key = data if impl == "threefry2x32" else jax.random.wrap_key_data(data, impl=impl)
    typed = key is not None and jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key)
    key_impl = str(jax.random.key_impl(key)) if typed else "threefry2x32"
    key_data = None if key is None else (jax.random.key_data(key) if typed else key)
    spike_fn = Heaviside() if spike_fn is None else spike_fn

    subgraphs: list = []
    raw, edges, ins, outs = _flatten_graph(graph, "", subgraphs)
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(
            f"the graph needs exactly one Input and one Output node, found {len(ins)} and "
            f"{len(outs)}"
        )
    order, _ = graph_order(list(raw), edges, ins[0])
    preds: dict[str, list[str]] = {n: [] for n in raw}
    for u, v in edges:
        preds[v].append(u)
    shapes: dict[str, tuple[int, ...]] = {}
    built: dict[str, Any] = {}

    def in_shape_of(name):
        for u in preds[name]:
            if u in shapes:
                return shapes[u]
        raise ValueError(f"node {name!r}: cannot infer its input shape (no typed predecessor)")

    for idx, name in enumerate(order):
        node = raw[name]
        meta = _node_meta(node)
        k = None if key is None else jax.random.fold_in(key, idx)
        built[name] = _convert(
            name, node, meta, dt, crossbar, k, reset, integrator, spike_fn, in_shape_of
        )
        shapes[name] = tuple(built[name].out_shape)
    nodes = {n: built[n] for n in raw}  # keep the graph's node order
    metadata = {"subgraphs": tuple((p, i, o) for p, i, o, _ in subgraphs)}
    metadata["graph_metadata"] = json.dumps(_plain_meta(gmeta))
    if crossbar is not None:
        metadata["xbar.key"] = tuple(int(a) for a in np.asarray(key_data, np.uint32).ravel())
        metadata["xbar.key_impl"] = key_impl
    return Network.create(
        nodes, edges, input=ins[0], output=outs[0], dt=dt, crossbar=crossbar, metadata=metadata
    )


def _plain_meta(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if str(k).startswith("xbar.") or k in ("dt", "reset", "integrator"):
            continue
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, (np.ndarray, np.generic)):
            v = np.asarray(v).tolist()
        if isinstance(v, (str, int, float, bool, list)) or v is None:
            out[str(k)] = v
    return out


def _with_extras(neuron, meta, where):
    """A neuron with what NIR has no field for, from the node's ``xbar.`` metadata written by
    :func:`to_nir`: the refractory period ``xbar.t_ref`` [s] and the membrane register
    ``xbar.precision`` (other importers ignore these keys)."""
    if "xbar.t_ref" in meta:
        if not hasattr(neuron, "t_ref"):
            raise ValueError(f"{where}: xbar.t_ref given for a {type(neuron).__name__}")
        t_ref = jnp.asarray(np.asarray(meta["xbar.t_ref"], dtype=float))
        neuron = eqx.tree_at(lambda n: n.t_ref, neuron, t_ref)
    if "xbar.precision" in meta:
        text = meta["xbar.precision"]
        precision = rebuild(json.loads(text.decode() if isinstance(text, bytes) else text))
        neuron = eqx.tree_at(lambda n: n.precision, neuron, precision, is_leaf=lambda x: x is None)
    return neuron


def _convert(name, node, meta, dt, crossbar, key, reset, integrator, spike_fn, in_shape_of):
    t = type(node)
    where = f"node {name!r}"

    def get_reset():
        return _reset_obj(reset if reset is not None else meta.get("reset", "value"), where)

    def get_integ():
        r = integrator if integrator is not None else meta.get("integrator", "euler")
        return _integrator_obj(r, where)

    if t is nir.Input:
        return Identity(tuple(int(a) for a in np.asarray(node.input_type["input"]).ravel()))
    if t is nir.Output:
        ot = node.output_type.get("output") if node.output_type else None
        if ot is None or any(v is None for v in np.atleast_1d(ot)):
            return Identity(tuple(in_shape_of(name)))
        shape = tuple(int(a) for a in np.asarray(ot).ravel())
        return Identity(shape)
    if t in (nir.Affine, nir.Linear):
        w = _arr(node, "weight", name)
        if w.ndim != 2:
            raise ValueError(f"{where}: field 'weight' must have shape (out, in), got {w.shape}")
        b = None
        if t is nir.Affine:
            b = _arr(node, "bias", name)
            if b.shape != (w.shape[0],):
                raise ValueError(
                    f"{where}: field 'bias' has shape {b.shape}, expected ({w.shape[0]},)"
                )
        if crossbar is None:
            return IdealSynapses(jnp.asarray(w), None if b is None else jnp.asarray(b))
        return CrossbarSynapses.create(jnp.asarray(w), crossbar, key, None if b is None else b)
    if t in (nir.Conv1d, nir.Conv2d):
        w = _arr(node, "weight", name)
        nd = 1 if t is nir.Conv1d else 2
        if w.ndim != nd + 2:
            raise ValueError(
                f"{where}: field 'weight' must have {nd + 2} dimensions, got {w.shape}"
            )
        if node.input_shape is not None:
            spatial = np.asarray(node.input_shape).ravel()
        else:
            s_in = in_shape_of(name)
            spatial = np.asarray(s_in[1:])
        b = _arr(node, "bias", name)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{where}: field 'bias' has shape {b.shape}, expected ({w.shape[0]},)")
        pad = node.padding
        if not isinstance(pad, str):
            pad = tuple(int(p) for p in np.atleast_1d(pad))
            pad = pad[0] if (nd == 1 and len(pad) == 1) else pad
        try:
            return ConvSynapses.create(
                jnp.asarray(w),
                tuple(int(a) for a in spatial),
                stride=np.asarray(node.stride),
                padding=pad,
                dilation=np.asarray(node.dilation),
                groups=int(node.groups),
                bias=jnp.asarray(b),
                crossbar=crossbar,
                key=key,
            )
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
    if t in (nir.SumPool2d, nir.AvgPool2d):
        s_in = in_shape_of(name)
        vals = {}
        for f in ("kernel_size", "stride", "padding"):
            a = np.atleast_1d(_arr(node, f, name)).astype(int).ravel()
            if a.size == 1:
                a = np.repeat(a, 2)
            if a.size != 2:
                raise ValueError(f"{where}: field {f!r} must have 2 entries, got {a.tolist()}")
            vals[f] = (int(a[0]), int(a[1]))
        try:
            return Pool2d(
                kernel_size=vals["kernel_size"],
                stride=vals["stride"],
                padding=vals["padding"],
                average=t is nir.AvgPool2d,
                in_shape=tuple(s_in),
            )
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
    if t is nir.Flatten:
        it = node.input_type.get("input") if node.input_type else None
        s_in = in_shape_of(name) if it is None else tuple(int(a) for a in np.asarray(it))
        try:
            return Flatten(
                in_shape=tuple(s_in), start_dim=int(node.start_dim), end_dim=int(node.end_dim)
            )
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from err
    if t is nir.Scale:
        s = _arr(node, "scale", name)
        return Scale(scale=jnp.asarray(s), shape=s.shape)
    if t is nir.Threshold:
        th = _arr(node, "threshold", name)
        return Threshold(threshold=jnp.asarray(th), shape=th.shape, spike_fn=spike_fn)
    if t is nir.Delay:
        d = _arr(node, "delay", name)
        return Delay.create(d, dt, d.shape, name=name)
    if t is nir.I:
        shape, p = _layer_shape(node, ("r",), name)
        return NeuronLayer(_with_extras(Integrator(r=p["r"]), meta, where), dt, shape)
    if t is nir.IF:
        shape, p = _layer_shape(node, ("r", "v_threshold", "v_reset"), name)
        neuron = IF(**p, reset=get_reset(), spike_fn=spike_fn)
        return NeuronLayer(_with_extras(neuron, meta, where), dt, shape)
    if t is nir.LI:
        shape, p = _layer_shape(node, ("tau", "r", "v_leak"), name)
        _check_pos(name, "tau", p["tau"])
        return NeuronLayer(_with_extras(LI(**p, integrator=get_integ()), meta, where), dt, shape)
    if t is nir.LIF:
        shape, p = _layer_shape(node, ("tau", "r", "v_leak", "v_threshold", "v_reset"), name)
        _check_pos(name, "tau", p["tau"])
        neuron = LIF(**p, reset=get_reset(), integrator=get_integ(), spike_fn=spike_fn)
        return NeuronLayer(_with_extras(neuron, meta, where), dt, shape)
    if t is nir.CubaLI:
        shape, p = _layer_shape(node, ("tau_syn", "tau_mem", "r", "v_leak", "w_in"), name)
        _check_pos(name, "tau_syn", p["tau_syn"])
        _check_pos(name, "tau_mem", p["tau_mem"])
        return NeuronLayer(
            _with_extras(CubaLI(**p, integrator=get_integ()), meta, where), dt, shape
        )
    if t is nir.CubaLIF:
        fields = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
        shape, p = _layer_shape(node, fields, name)
        _check_pos(name, "tau_syn", p["tau_syn"])
        _check_pos(name, "tau_mem", p["tau_mem"])
        neuron = CubaLIF(**p, reset=get_reset(), integrator=get_integ(), spike_fn=spike_fn)
        return NeuronLayer(_with_extras(neuron, meta, where), dt, shape)
    raise ValueError(f"{where}: unsupported NIR node type {t.__name__}")


# ---- export --------------------------------------------------------------------------
def _full(a, shape):
    return np.array(np.broadcast_to(np.asarray(a), shape))


def _neuron_to_nir(neuron, shape, scale):
    """NIR node of a neuron layer; ``scale`` folds a core's ``current_per_unit``."""
    meta: dict[str, Any] = {}
    if hasattr(neuron, "integrator"):
        meta["integrator"] = _integrator_name(neuron.integrator)
    if hasattr(neuron, "reset"):
        meta["reset"] = _reset_name(neuron.reset)
    # NIR has no field for these: they travel in the node's xbar metadata (from_nir reads
    # them back; other importers ignore them)
    t_ref = getattr(neuron, "t_ref", 0.0)
    if np.any(np.asarray(t_ref) != 0):
        meta["xbar.t_ref"] = _full(t_ref, shape).astype(float)
    if neuron.precision is not None:
        meta["xbar.precision"] = json.dumps(describe(neuron.precision))

    def f(name, s=1.0):
        a = getattr(neuron, name)
        return _full(a if s == 1.0 else np.asarray(a) * s, shape)

    if isinstance(neuron, Integrator):
        return nir.I(r=f("r", scale), metadata=meta)
    if isinstance(neuron, IF):
        return nir.IF(
            r=f("r", scale), v_threshold=f("v_threshold"), v_reset=f("v_reset"), metadata=meta
        )
    if isinstance(neuron, LI):
        return nir.LI(tau=f("tau"), r=f("r", scale), v_leak=f("v_leak"), metadata=meta)
    if isinstance(neuron, LIF):
        return nir.LIF(
            tau=f("tau"),
            r=f("r", scale),
            v_leak=f("v_leak"),
            v_threshold=f("v_threshold"),
            v_reset=f("v_reset"),
            metadata=meta,
        )
    if isinstance(neuron, CubaLI):
        return nir.CubaLI(
            tau_syn=f("tau_syn"),
            tau_mem=f("tau_mem"),
            r=f("r"),
            v_leak=f("v_leak"),
            w_in=f("w_in", scale),
            metadata=meta,
        )
    if isinstance(neuron, CubaLIF):
        return nir.CubaLIF(
            tau_syn=f("tau_syn"),
            tau_mem=f("tau_mem"),
            r=f("r"),
            v_leak=f("v_leak"),
            v_threshold=f("v_threshold"),
            v_reset=f("v_reset"),
            w_in=f("w_in", scale),
            metadata=meta,
        )
    raise ValueError(f"to_nir: neuron model {type(neuron).__name__} has no NIR node")


def _synapses_to_nir(syn):
    w = np.asarray(syn.weight)
    if isinstance(syn, ConvSynapses):
        nd = len(syn.stride)
        cls = nir.Conv1d if nd == 1 else nir.Conv2d
        bias = np.zeros(w.shape[0], w.dtype) if syn.bias is None else np.asarray(syn.bias)
        spatial = syn.in_shape[1:]
        pad = syn.padding_spec
        if nd == 1:
            pad = pad if isinstance(pad, str) else int(pad[0])
            return cls(
                input_shape=int(spatial[0]),
                weight=w,
                stride=int(syn.stride[0]),
                padding=pad,
                dilation=int(syn.dilation[0]),
                groups=int(syn.groups),
                bias=bias,
            )
        return cls(
            input_shape=tuple(spatial),
            weight=w,
            stride=tuple(syn.stride),
            padding=pad if isinstance(pad, str) else tuple(pad),
            dilation=tuple(syn.dilation),
            groups=int(syn.groups),
            bias=bias,
        )
    if syn.bias is None:
        return nir.Linear(weight=w)
    return nir.Affine(weight=w, bias=np.asarray(syn.bias))


def _node_to_nir(node):
    """One NIR node, or ``(synapse_node, neuron_node)`` for a :class:`Core`."""
    if isinstance(node, (IdealSynapses, CrossbarSynapses, ConvSynapses)):
        return _synapses_to_nir(node)
    if isinstance(node, NeuronLayer):
        return _neuron_to_nir(node.neuron, node.shape, 1.0)
    if isinstance(node, Core):
        scale = float(np.asarray(node.current_per_unit))
        return (
            _synapses_to_nir(node.synapses),
            _neuron_to_nir(node.neuron, node.out_shape, scale),
        )
    if isinstance(node, Scale):
        return nir.Scale(scale=_full(node.scale, node.shape))
    if isinstance(node, Threshold):
        return nir.Threshold(threshold=_full(node.threshold, node.shape))
    if isinstance(node, Flatten):
        return nir.Flatten(
            input_type={"input": np.array(node.in_shape)},
            start_dim=node.start_dim,
            end_dim=node.end_dim,
        )
    if isinstance(node, Pool2d):
        cls = nir.AvgPool2d if node.average else nir.SumPool2d
        return cls(
            kernel_size=np.array(node.kernel_size),
            stride=np.array(node.stride),
            padding=np.array(node.padding),
        )
    if isinstance(node, Delay):
        return nir.Delay(delay=_full(node.delay, node.shape))
    raise ValueError(f"to_nir: node type {type(node).__name__} has no NIR equivalent")


def to_nir(net: Network) -> nir.NIRGraph:
    """Export ``net`` as a NIR graph (module docstring). The input and output nodes are
    named ``input`` and ``output``; a :class:`Core` ``c`` becomes the nodes ``c.synapses``
    and ``c.neurons`` (its ``current_per_unit`` folded into the neurons' ``r`` or
    ``w_in``); nested graphs read by :func:`from_nir` are nested again."""
    meta = dict(net.metadata)
    rename = {net.input: "input", net.output: "output"}
    for n in net.nodes:
        if n in ("input", "output") and n not in rename:
            raise ValueError(f"to_nir: node {n!r} clashes with the exported input/output name")
    flat: dict[str, Any] = {}
    ends: dict[str, tuple[str, str]] = {}
    inner_edges: list[tuple[str, str]] = []
    for n, node in net.nodes.items():
        new = rename.get(n, n)
        if n == net.input:
            flat[new] = nir.Input(input_type={"input": np.array(node.in_shape)})
            continue
        if n == net.output:
            flat[new] = nir.Output(output_type={"output": np.array(node.out_shape)})
            continue
        if isinstance(node, Identity):  # inner Input/Output of a nested graph
            flat[new] = node
            continue
        out = _node_to_nir(node)
        if isinstance(out, tuple):
            flat[new + ".synapses"], flat[new + ".neurons"] = out
            ends[new] = (new + ".synapses", new + ".neurons")
            inner_edges.append((new + ".synapses", new + ".neurons"))
        else:
            flat[new] = out
    edges = []
    for u, v in net.edges:
        u2, v2 = rename.get(u, u), rename.get(v, v)
        u2 = ends[u2][1] if u2 in ends else u2
        v2 = ends[v2][0] if v2 in ends else v2
        edges.append((u2, v2))
    edges += inner_edges
    gmeta = json.loads(meta.get("graph_metadata", "{}"))
    gmeta["dt"] = float(net.dt)
    if net.crossbar is not None:
        gmeta["xbar.crossbar"] = json.dumps(describe(net.crossbar))
        if "xbar.key" in meta:
            gmeta["xbar.key"] = np.asarray(meta["xbar.key"], np.uint32)
            gmeta["xbar.key_impl"] = meta.get("xbar.key_impl", "threefry2x32")
    subgraphs = list(meta.get("subgraphs", ()))
    return _nest(flat, edges, subgraphs, gmeta)


def _nest(flat, edges, subgraphs, gmeta):
    """Group dotted names back into nested graphs (innermost first)."""
    nodes = dict(flat)
    edges = list(edges)
    for prefix, inp, outp in sorted(subgraphs, key=lambda s: -s[0].count(".")):
        pre = prefix + "."
        keys = list(nodes)
        members = [n for n in keys if n.startswith(pre)]
        sub_nodes = {}
        for n in members:
            node = nodes[n]
            if n == inp:
                node = nir.Input(input_type={"input": np.array(node.in_shape)})
            elif n == outp:
                node = nir.Output(output_type={"output": np.array(node.out_shape)})
            sub_nodes[n[len(pre) :]] = node
        inner = [(u[len(pre) :], v[len(pre) :]) for u, v in edges if u in members and v in members]
        outer = [
            (prefix if u == outp else u, prefix if v == inp else v)
            for u, v in edges
            if not (u in members and v in members)
        ]
        pos = keys.index(members[0]) if members else len(keys)
        rest = [(k, nodes[k]) for k in keys if k not in members]
        before = sum(1 for k in keys[:pos] if k not in members)
        sub = nir.NIRGraph(nodes=sub_nodes, edges=inner, type_check=False)
        rest.insert(before, (prefix, sub))
        nodes = dict(rest)
        edges = outer
    for n, node in nodes.items():
        if isinstance(node, Identity):
            raise ValueError(f"to_nir: identity node {n!r} outside a nested graph")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=gmeta, type_check=False)


__all__ = ["FROM_METADATA", "crossbar_from_metadata", "describe", "from_nir", "rebuild", "to_nir"]
