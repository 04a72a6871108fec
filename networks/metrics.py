"""Neuromorphic metrics of a network run: NeuroBench's counts and xbar's hardware figures.

Counts, per sample (averaged over the samples of a batch), summed over layers and time
steps, with the definitions of NeuroBench (Yik et al., Nat. Commun. 16:1545, 2025), whose
harness calls an SNN once per time step:

* **effective synaptic operations**: per synaptic layer and step, the number of (nonzero
  input, nonzero weight) pairs, bias excluded; counted as accumulates (ACs) when that
  step's input holds only -1, 0, 1 (spikes), else as multiply-accumulates (MACs);
* **dense synaptic operations**: the same with every input and weight taken as nonzero
  (fan-in x outputs; a convolution counts every output position);
* **activation sparsity**: ``1 - nonzero / all`` over the outputs of the spiking layers
  (neuron layers that spike, cores, Threshold nodes), all steps and samples; also per layer;
* **membrane updates**: every neuron at the first step, plus at each later step the
  neurons whose membrane changed; **neuron operations** = updates x the model's
  ``n_ops``;
* **footprint**: bytes of the parameters (synaptic weights and biases, neuron parameters,
  node parameters) and buffers (states); **connection sparsity**: zero weights / weights.

Hardware figures (NeuroBench has none), from the array layer's accounting:

* **crossbar energy**: every read of a crossbar layer costs :func:`xbar.read_energy` of
  its tiles (array energy from the solved currents plus DAC and ADC conversions); a
  layer is read only at steps where its input has an event (event-driven cores), and a
  convolution reads once per output position whose patch has an event;
* **neuron energy**: ``e_update`` per membrane update + ``e_spike`` per output spike;
* **routing**: each nonzero value carried by an edge into a synaptic layer is one routed
  address event, costing ``e_route * hops_per_event``: the interconnect cost that grows
  with the number of cores;
* **synaptic operations per joule** = effective synaptic ops / total energy;
* **latency**: steps (and seconds, ``steps * dt``) up to the first output event (mean over
  the samples that have one; NaN if none), the
  simulated time per inference ``T dt``, and the hardware time of one step (the read
  latencies of the crossbar layers one after another; positions of a convolution in
  sequence);
* a **comparison with digital neuromorphic chips** from their published energies per
  synaptic op and per neuron update, applied to the same counts
  (:data:`DIGITAL_CHIPS`).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import xbar

from ._checks import check_nonnegative
from .core import AbstractSynapses, ConvSynapses, Core, CrossbarSynapses
from .network import Network
from .nodes import NeuronLayer, Threshold

# Energy per synaptic operation and per neuron update [J] of digital chips.
DIGITAL_CHIPS = {
    "Loihi (Davies et al., IEEE Micro 38(1), 2018)": (27.1e-12, 81e-12),
    "SpiNNaker2 (Hoeppner et al., 2019)": (0.45e-9, 2.19e-9),
}


class EnergyModel(eqx.Module):
    """Energies of the CMOS parts of a core [J].

    Fields:
        e_update_j: one membrane update of one neuron. Default 1 pJ (UNCONFIRMED: order of
            magnitude of a mixed-signal silicon neuron, Indiveri et al., Front. Neurosci.
            5:73, 2011).
        e_spike_j: one output spike (pulse generation). Default 1 pJ (UNCONFIRMED, same).
        e_route_j: one address event over one hop of the interconnect. Default 3.5 pJ
            (Loihi's cross-tile spike energy per hop, Davies et al., IEEE Micro 38(1), 2018,
            Table 1; UNCONFIRMED for other chips).
        hops_per_event: mean hops of a routed event (1 for neighbouring cores; grows as
            ``~sqrt(n_cores)`` on a 2-D mesh).
    """

    e_update_j: float = 1e-12
    e_spike_j: float = 1e-12
    e_route_j: float = 3.5e-12
    hops_per_event: float = 1.0

    def __check_init__(self):
        for f in ("e_update_j", "e_spike_j", "e_route_j", "hops_per_event"):
            check_nonnegative(f, getattr(self, f))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Metrics of one run, per sample (module docstring); ``per_layer`` maps a node name
    to its own counts. Energies [J], times [s]."""

    effective_acs: float
    effective_macs: float
    dense_ops: float
    activation_sparsity: float
    membrane_updates: float
    neuron_ops: float
    footprint_bytes: int
    connection_sparsity: float
    crossbar_energy_j: float
    neuron_energy_j: float
    routing_energy_j: float
    energy_j: float
    routed_events: float
    synops_per_joule: float
    first_spike_steps: float
    first_spike_s: float
    inference_time_s: float
    step_latency_s: float
    digital: dict
    per_layer: dict

    @property
    def effective_synops(self) -> float:
        return self.effective_acs + self.effective_macs

    def summary(self) -> str:
        """A printable table of the totals and the digital comparison."""
        rows = [
            ("effective synaptic ops (AC)", f"{self.effective_acs:.4g}"),
            ("effective synaptic ops (MAC)", f"{self.effective_macs:.4g}"),
            ("dense synaptic ops", f"{self.dense_ops:.4g}"),
            ("activation sparsity", f"{self.activation_sparsity:.4f}"),
            ("membrane updates", f"{self.membrane_updates:.4g}"),
            ("neuron ops", f"{self.neuron_ops:.4g}"),
            ("footprint [bytes]", f"{self.footprint_bytes}"),
            ("connection sparsity", f"{self.connection_sparsity:.4f}"),
            ("routed events", f"{self.routed_events:.4g}"),
            ("crossbar energy [J]", f"{self.crossbar_energy_j:.4g}"),
            ("neuron energy [J]", f"{self.neuron_energy_j:.4g}"),
            ("routing energy [J]", f"{self.routing_energy_j:.4g}"),
            ("energy per inference [J]", f"{self.energy_j:.4g}"),
            ("synaptic ops per joule", f"{self.synops_per_joule:.4g}"),
            ("steps to first output event", f"{self.first_spike_steps:.4g}"),
            ("hardware time per step [s]", f"{self.step_latency_s:.4g}"),
        ]
        rows += [(f"same counts on {k} [J]", f"{v:.4g}") for k, v in self.digital.items()]
        w = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)


def _synapses(node):
    if isinstance(node, Core):
        return node.synapses
    if isinstance(node, AbstractSynapses):
        return node
    return None


def _neuron(node):
    if isinstance(node, (Core, NeuronLayer)):
        return node.neuron
    return None


def _nonzero_weight_counts(syn, x_nz):
    """Effective ops of one synaptic layer for nonzero-input indicators ``x_nz`` (N, *in)."""
    w_nz = (np.asarray(syn.weight) != 0).astype(np.float64)
    if isinstance(syn, ConvSynapses):
        nd = len(syn.stride)
        sp = "HW"[:nd] if nd == 2 else "H"
        y = jax.lax.conv_general_dilated(
            jnp.asarray(x_nz, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32),
            jnp.asarray(w_nz, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32),
            syn.stride,
            syn.padding,
            rhs_dilation=syn.dilation,
            dimension_numbers=("NC" + sp, "OI" + sp, "NC" + sp),
            feature_group_count=syn.groups,
            precision=jax.lax.Precision.HIGHEST,
        )
        return np.asarray(y).reshape(y.shape[0], -1).sum(-1)
    return x_nz.reshape(x_nz.shape[0], -1) @ w_nz.sum(0)


def _dense_ops(syn) -> int:
    if isinstance(syn, ConvSynapses):
        w = syn.weight.shape
        return math.prod(syn.out_shape) * w[1] * math.prod(w[2:])
    return math.prod(syn.weight.shape)


def _tile_inputs(tc: xbar.TiledCrossbar, x):
    """Per-tile-row inputs ``(R, N, tm)`` of reads ``x`` (N, M), zero-padded."""
    (r, _), (tm, _) = tc.grid, tc.tile_shape
    m = tc.shape[0]
    xp = jnp.zeros((x.shape[0], r * tm), x.dtype).at[:, :m].set(x)
    return jnp.moveaxis(xp.reshape(x.shape[0], r, tm), 1, 0)


def tile_read_energy(tc: xbar.TiledCrossbar, x) -> tuple[np.ndarray, float]:
    """Energy [J] of reading ``x`` (N, M) on every tile of ``tc`` (summed over tiles, per
    read, from :func:`xbar.read_energy`) and the latency [s] of one read (tiles in
    parallel)."""
    xs = _tile_inputs(tc, jnp.asarray(x))

    def per_tile(tile, xr):
        e = xbar.read_energy(tile, xr)
        return e.total, e.latency_s

    def row(tiles_r, xr):
        return eqx.filter_vmap(lambda t: per_tile(t, xr))(tiles_r)

    total, lat = eqx.filter_vmap(row)(tc.tiles, xs)  # (R, C, N), (R, C)
    return np.asarray(jnp.sum(total, axis=(0, 1))), float(jnp.max(lat))


def _crossbar_energy(syn, xin, mask_reads=True):
    """Crossbar read energy [J] summed over the reads of ``xin`` (N, *in_shape), and the
    latency of one step [s]."""
    u = syn.input_scale
    if isinstance(syn, CrossbarSynapses):
        x = np.asarray(xin).reshape(xin.shape[0], -1) / float(u)
        keep = np.any(x != 0, axis=1) if mask_reads else np.ones(x.shape[0], bool)
        if not np.any(keep):
            return 0.0, 0.0
        e, lat = tile_read_energy(syn.tiles, jnp.asarray(x[keep]))
        return float(np.sum(e)), lat
    # convolution: one read per output position (im2col)
    nd = len(syn.stride)
    sp = "HW"[:nd] if nd == 2 else "H"
    patches = jax.lax.conv_general_dilated_patches(
        jnp.asarray(xin),
        syn.weight.shape[2:],
        syn.stride,
        syn.padding,
        rhs_dilation=syn.dilation,
        dimension_numbers=("NC" + sp, "OI" + sp, "NC" + sp),
        precision=jax.lax.Precision.HIGHEST,
    )  # (N, C * prod(k), *out)
    n_pos = math.prod(patches.shape[2:])
    c_in = syn.in_shape[0]
    feat = patches.shape[1] // c_in
    cols = np.asarray(patches).reshape(patches.shape[0], syn.groups, c_in // syn.groups * feat, -1)
    total, lat = 0.0, 0.0
    for g, tc in enumerate(syn.tiles):
        reads = np.moveaxis(cols[:, g], -1, 1).reshape(-1, cols.shape[2]) / float(u)
        keep = np.any(reads != 0, axis=1)
        if np.any(keep):
            e, lt = tile_read_energy(tc, jnp.asarray(reads[keep]))
            total += float(np.sum(e))
            lat = max(lat, lt)
    return total, lat * n_pos


def _nbytes(tree) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    total = 0
    for leaf in leaves:
        if isinstance(leaf, (bool, str)) or leaf is None:
            continue
        try:
            a = np.asarray(leaf)
        except (TypeError, ValueError):
            continue
        if np.issubdtype(a.dtype, np.number):
            total += a.nbytes
    return total


def measure(
    net: Network,
    x,
    key=None,
    *,
    energy: EnergyModel | None = None,
) -> Metrics:
    """Run ``net`` on ``x`` (``(T, *in)`` or ``(T, B, *in)``) and return its
    :class:`Metrics` per sample (module docstring). ``key`` draws read noise as in
    :meth:`Network.run`; the crossbar energy is that of noiseless reads of the same
    inputs."""
    energy = EnergyModel() if energy is None else energy
    xarr, batched = net._batched(x)
    xarr = jnp.asarray(xarr, jnp.result_type(float))
    if not batched:
        xarr = xarr[:, None]
    t_steps, n_samples = xarr.shape[:2]
    syn_nodes = [n for n in net.order if _synapses(net.nodes[n]) is not None]
    neuron_nodes = [n for n in net.order if _neuron(net.nodes[n]) is not None]
    outs, ins, sts = net.simulate(xarr, key, inputs=syn_nodes, states=neuron_nodes)
    per_layer: dict[str, dict] = {}

    acs = macs = dense = 0.0
    e_xbar = 0.0
    step_latency = 0.0
    for n in syn_nodes:
        syn = _synapses(net.nodes[n])
        xin = np.asarray(ins[n]).reshape((t_steps * n_samples, *syn.in_shape))
        counts = _nonzero_weight_counts(syn, (xin != 0).astype(np.float64))
        spikes = np.all(np.isin(xin.reshape(xin.shape[0], -1), (-1.0, 0.0, 1.0)), axis=1)
        layer_acs = float(np.sum(counts[spikes])) / n_samples
        layer_macs = float(np.sum(counts[~spikes])) / n_samples
        layer_dense = float(_dense_ops(syn) * t_steps)
        acs, macs, dense = acs + layer_acs, macs + layer_macs, dense + layer_dense
        entry = dict(effective_acs=layer_acs, effective_macs=layer_macs, dense_ops=layer_dense)
        if syn.on_crossbar:
            e, lat = _crossbar_energy(syn, xin)
            entry["crossbar_energy_j"] = e / n_samples
            e_xbar += e / n_samples
            step_latency += lat
        per_layer[n] = entry

    # activation sparsity over spiking layers
    nz_total = all_total = 0
    spikes_out = 0.0
    for n in net.order:
        node = net.nodes[n]
        neuron = _neuron(node)
        spiking = isinstance(node, Threshold) or (neuron is not None and neuron.spiking)
        if not spiking:
            continue
        y = np.asarray(outs[n])
        nz, tot = int(np.count_nonzero(y)), y.size
        nz_total += nz
        all_total += tot
        if neuron is not None:
            spikes_out += nz / n_samples
        per_layer.setdefault(n, {})["activation_sparsity"] = 1.0 - nz / tot
    sparsity = 1.0 - nz_total / all_total if all_total else float("nan")

    updates = ops = 0.0
    for n in neuron_nodes:
        v = np.asarray(sts[n].v)  # (T, B, *shape)
        first = v[0].size
        later = int(np.count_nonzero(v[1:] != v[:-1]))
        u = (first + later) / n_samples
        updates += u
        ops += u * _neuron(net.nodes[n]).n_ops
        per_layer.setdefault(n, {}).update(membrane_updates=u)

    # routed address events: nonzero values on edges into synaptic layers
    events = 0.0
    syn_set = set(syn_nodes)
    for u_, v_ in net.edges:
        if v_ not in syn_set:
            continue
        y = np.asarray(outs[u_])
        if (u_, v_) in net.recurrent:
            y = y[:-1]
        events += np.count_nonzero(y) / n_samples

    # footprint: synaptic parameters, neuron and node parameters, states
    foot = 0
    for n in net.order:
        node = net.nodes[n]
        syn = _synapses(node)
        if syn is not None:
            foot += _nbytes((syn.weight, syn.bias))
        neuron = _neuron(node)
        if neuron is not None:
            foot += _nbytes(neuron)
        elif syn is None:
            foot += _nbytes(node)
        foot += _nbytes(node.init_state(xarr.dtype))
    n_w = n_zero = 0
    for n in syn_nodes:
        w = np.asarray(_synapses(net.nodes[n]).weight)
        n_w += w.size
        n_zero += int(np.count_nonzero(w == 0))

    e_neuron = energy.e_update_j * updates + energy.e_spike_j * spikes_out
    e_route = energy.e_route_j * energy.hops_per_event * events
    e_total = e_xbar + e_neuron + e_route
    synops = acs + macs
    out = np.asarray(outs[net.output]).reshape(t_steps, n_samples, -1)
    any_ev = np.any(out != 0, axis=2)  # (T, B)
    # steps up to and including the first one with an output event (NaN: none)
    first = np.where(any_ev.any(0), np.argmax(any_ev, axis=0) + 1.0, np.nan)
    first_mean = float(np.nanmean(first)) if np.any(np.isfinite(first)) else float("nan")
    dt = float(net.dt)
    digital = {k: synops * es + updates * en for k, (es, en) in DIGITAL_CHIPS.items()}
    return Metrics(
        effective_acs=acs,
        effective_macs=macs,
        dense_ops=dense,
        activation_sparsity=sparsity,
        membrane_updates=updates,
        neuron_ops=ops,
        footprint_bytes=int(foot),
        connection_sparsity=n_zero / n_w if n_w else float("nan"),
        crossbar_energy_j=e_xbar,
        neuron_energy_j=e_neuron,
        routing_energy_j=e_route,
        energy_j=e_total,
        routed_events=events,
        synops_per_joule=synops / e_total if e_total > 0 else float("nan"),
        first_spike_steps=first_mean,
        first_spike_s=first_mean * dt,
        inference_time_s=t_steps * dt,
        step_latency_s=step_latency,
        digital=digital,
        per_layer=per_layer,
    )


__all__ = ["DIGITAL_CHIPS", "EnergyModel", "Metrics", "measure", "tile_read_energy"]
