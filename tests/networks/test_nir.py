"""NIR import/export: spike-for-spike against step-by-step references written here from the
NIR equations (forward Euler, strict threshold, same-step reset), file round trips with the
``nir`` package, exact parameter round trips, and errors naming node and field."""

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import xbar
from xbar import networks as nw

DT = 1e-3
RNG = np.random.default_rng(7)


def _lif(n, tau=0.01, r=10.0, v_th=0.5, v_reset=0.0, v_leak=0.0):
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, r) * (1 + 0.1 * RNG.random(n)),
        v_leak=np.full(n, v_leak),
        v_threshold=np.full(n, v_th),
        v_reset=np.full(n, v_reset),
    )


def _spikes(t, *shape, p=0.3, seed=1):
    return (np.random.default_rng(seed).random((t, *shape)) < p).astype(float)


def _ref_lif(p, x_seq, state=None, reset="value", exact=False):
    """Reference LIF over a sequence of inputs; returns spikes."""
    v = np.zeros_like(p.v_leak, dtype=float)
    out = []
    for x in x_seq:
        a = -np.expm1(-DT / p.tau) if exact else DT / p.tau
        v = v + a * (p.v_leak - v + p.r * x)
        z = (v > p.v_threshold).astype(float)
        v = (
            np.where(z > 0, p.v_reset, v)
            if reset == "value"
            else v - z * (p.v_threshold - p.v_reset)
        )
        out.append(z)
    return np.array(out)


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _ff_lif_graph():
    w, b = RNG.normal(size=(6, 4)), 0.05 * RNG.normal(size=6)
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Affine(weight=w, bias=b),
            "lif": _lif(6),
            "output": nir.Output(output_type={"output": np.array([6])}),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    return g


def _check_file_round_trip(g, x, tmp_path, expect):
    _assert_same_params(g, nw.to_nir(nw.from_nir(g, dt=DT)))
    path = tmp_path / "g.nir"
    nir.write(path, nw.to_nir(nw.from_nir(g, dt=DT)))
    net2 = nw.from_nir(nir.read(path))  # dt from the metadata
    np.testing.assert_array_equal(net2.run(x), expect)


def test_feedforward_lif_matches_reference(tmp_path):
    g = _ff_lif_graph()
    x = _spikes(80, 4)
    fc, p = g.nodes["fc"], g.nodes["lif"]
    ref = _ref_lif(p, [fc.weight @ xt + fc.bias for xt in x])
    assert ref.sum() > 10
    net = nw.from_nir(g, dt=DT)
    np.testing.assert_array_equal(net.run(x), ref)
    # batched: (T, B, n) equals each sample alone
    xb = np.stack([x, _spikes(80, 4, seed=3)], axis=1)
    yb = eqx.filter_jit(nw.Network.run)(net, xb)
    np.testing.assert_array_equal(yb[:, 0], ref)
    np.testing.assert_array_equal(yb[:, 1], net.run(xb[:, 1]))
    _check_file_round_trip(g, x, tmp_path, ref)


def test_reset_subtract_and_exact_integrator_options():
    g = _ff_lif_graph()
    x = _spikes(60, 4)
    fc, p = g.nodes["fc"], g.nodes["lif"]
    inp = [fc.weight @ xt + fc.bias for xt in x]
    net = nw.from_nir(g, dt=DT, reset="subtract", integrator="exact")
    np.testing.assert_array_equal(net.run(x), _ref_lif(p, inp, reset="subtract", exact=True))
    net_obj = nw.from_nir(g, dt=DT, reset=nw.ResetBySubtraction(), integrator=nw.ExactDecay())
    np.testing.assert_array_equal(net_obj.run(x), net.run(x))
    with pytest.raises(ValueError, match="reset"):
        nw.from_nir(g, dt=DT, reset="bogus")
    # the options travel through the node metadata
    g2 = nw.to_nir(net)
    assert g2.nodes["lif"].metadata == {"integrator": "exact", "reset": "subtract"}
    np.testing.assert_array_equal(nw.from_nir(g2).run(x), net.run(x))


def test_cubalif_updates_the_current_first():
    n = 5
    w = RNG.normal(size=(n, 3))
    node = nir.CubaLIF(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.01),
        r=np.full(n, 2.0),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.2),
        v_reset=np.full(n, -0.05),
        w_in=1 + 0.2 * RNG.random(n),
    )
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=w),
            "cuba": node,
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        [("input", "fc"), ("fc", "cuba"), ("cuba", "output")],
    )
    x = _spikes(100, 3, p=0.4)
    i = np.zeros(n)
    v = np.zeros(n)
    ref = []
    for xt in x:
        i = i + DT / node.tau_syn * (-i + node.w_in * (w @ xt))
        v = v + DT / node.tau_mem * (node.v_leak - v + node.r * i)
        z = (v > node.v_threshold).astype(float)
        v = np.where(z > 0, node.v_reset, v)
        ref.append(z)
    ref = np.array(ref)
    assert ref.sum() > 5
    np.testing.assert_array_equal(nw.from_nir(g, dt=DT).run(x), ref)


def test_recurrent_lif_loop_reads_the_previous_step(tmp_path):
    n = 6
    w_in, w_rec = RNG.normal(size=(n, 3)), 0.5 * RNG.normal(size=(n, n))
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=w_in),
            "lif": _lif(n),
            "rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    net = nw.from_nir(g, dt=DT)
    assert net.recurrent == frozenset({("rec", "lif")})
    x = _spikes(80, 3, p=0.4)
    p = g.nodes["lif"]
    v, z = np.zeros(n), np.zeros(n)
    ref = []
    for xt in x:
        inp = w_in @ xt + w_rec @ z  # z: the loop's output of the previous step
        v = v + DT / p.tau * (p.v_leak - v + p.r * inp)
        z = (v > p.v_threshold).astype(float)
        v = np.where(z > 0, p.v_reset, v)
        ref.append(z)
    ref = np.array(ref)
    assert ref.sum() > 10
    np.testing.assert_array_equal(net.run(x), ref)
    _check_file_round_trip(g, x, tmp_path, ref)


def _conv2d_ref(x, w, b, stride, pad):
    c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.zeros((c_in, h + 2 * pad, wd + 2 * pad))
    xp[:, pad : pad + h, pad : pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((c_out, oh, ow))
    for o in range(c_out):
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
                y[o, i, j] = np.sum(patch * w[o]) + b[o]
    return y


def _sumpool_ref(x, k):
    c, h, w = x.shape
    return x[:, : h // k * k, : w // k * k].reshape(c, h // k, k, w // k, k).sum(axis=(2, 4))


def test_conv_sumpool_flatten_network_matches_reference(tmp_path):
    w = RNG.normal(size=(2, 1, 3, 3))
    b = 0.1 * RNG.normal(size=2)
    n_if = (2, 6, 6)
    w_fc = RNG.normal(size=(4, 2 * 3 * 3))
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
            "conv": nir.Conv2d(
                input_shape=(6, 6), weight=w, stride=1, padding=1, dilation=1, groups=1, bias=b
            ),
            "if1": nir.IF(
                r=np.full(n_if, 400.0), v_threshold=np.ones(n_if), v_reset=np.zeros(n_if)
            ),
            "pool": nir.SumPool2d(
                kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
            ),
            "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
            "fc": nir.Linear(weight=w_fc),
            "lif": _lif(4),
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        [
            ("input", "conv"),
            ("conv", "if1"),
            ("if1", "pool"),
            ("pool", "flat"),
            ("flat", "fc"),
            ("fc", "lif"),
            ("lif", "output"),
        ],
    )
    x = _spikes(40, 1, 6, 6, p=0.5)
    v_if = np.zeros(n_if)
    p = g.nodes["lif"]
    v, ref = np.zeros(4), []
    for xt in x:
        v_if = v_if + DT * 400.0 * _conv2d_ref(xt, w, b, 1, 1)
        z_if = (v_if > 1.0).astype(float)
        v_if = np.where(z_if > 0, 0.0, v_if)
        y = w_fc @ _sumpool_ref(z_if, 2).reshape(-1)
        v = v + DT / p.tau * (p.v_leak - v + p.r * y)
        z = (v > p.v_threshold).astype(float)
        v = np.where(z > 0, p.v_reset, v)
        ref.append(z)
    ref = np.array(ref)
    assert ref.sum() > 5
    net = nw.from_nir(g, dt=DT)
    tr = net.trace(x)
    assert tr["if1"].shape == (40, *n_if)
    np.testing.assert_array_equal(net.run(x), ref)
    _check_file_round_trip(g, x, tmp_path, ref)


@pytest.mark.parametrize("padding, stride, dilation, groups", [(0, 2, 1, 1), ("same", 1, 2, 2)])
def test_conv_and_avgpool_semantics(padding, stride, dilation, groups):
    """Conv2d/Conv1d/AvgPool2d against explicit references (PyTorch conventions)."""
    w = RNG.normal(size=(4, 4 // groups, 3, 3))
    b = RNG.normal(size=4)
    x = RNG.normal(size=(4, 7, 7))
    conv = nw.ConvSynapses.create(
        w, (7, 7), stride=stride, padding=padding, dilation=dilation, groups=groups, bias=b
    )
    # reference by a dilated kernel and explicit padding
    kd = np.zeros((4, 4 // groups, 2 * dilation + 1, 2 * dilation + 1))
    kd[:, :, ::dilation, ::dilation] = w
    pad = dilation if padding == "same" else 0
    ref = np.concatenate(
        [
            _conv2d_ref(
                x[gi * (4 // groups) : (gi + 1) * (4 // groups)],
                kd[gi * (4 // groups) : (gi + 1) * (4 // groups)],
                b[gi * (4 // groups) : (gi + 1) * (4 // groups)],
                stride,
                pad,
            )
            for gi in range(groups)
        ]
    )
    np.testing.assert_allclose(conv(x), ref, rtol=1e-12, atol=1e-12)
    pool = nw.Pool2d(
        kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), average=True, in_shape=(4, 7, 7)
    )
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    np.testing.assert_allclose(pool.step(None, x)[1], _sumpool_ref(xp, 2) / 4, rtol=1e-12)
    w1 = RNG.normal(size=(2, 3, 3))
    x1 = RNG.normal(size=(3, 9))
    c1 = nw.ConvSynapses.create(w1, (9,), stride=2, padding=1)
    xp1 = np.pad(x1, ((0, 0), (1, 1)))
    ref1 = np.array(
        [[np.sum(xp1[:, 2 * i : 2 * i + 3] * w1[o]) for i in range(5)] for o in range(2)]
    )
    np.testing.assert_allclose(c1(x1), ref1, rtol=1e-12)


def test_if_layer_and_threshold_scale(tmp_path):
    n = 5
    w = RNG.normal(size=(n, 3))
    node = nir.IF(r=np.full(n, 300.0), v_threshold=np.full(n, 0.5), v_reset=np.full(n, 0.1))
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=w),
            "if": node,
            "scale": nir.Scale(scale=np.arange(1.0, n + 1)),
            "thr": nir.Threshold(threshold=np.full(n, 2.5)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        [("input", "fc"), ("fc", "if"), ("if", "scale"), ("scale", "thr"), ("thr", "output")],
    )
    x = _spikes(60, 3, p=0.5)
    v, ref = np.zeros(n), []
    for xt in x:
        v = v + DT * node.r * (w @ xt)
        z = (v > node.v_threshold).astype(float)
        v = np.where(z > 0, node.v_reset, v)
        ref.append((np.arange(1.0, n + 1) * z > 2.5).astype(float))
    ref = np.array(ref)
    assert ref.sum() > 3
    np.testing.assert_array_equal(nw.from_nir(g, dt=DT).run(x), ref)
    _check_file_round_trip(g, x, tmp_path, ref)


def test_delay_integer_steps_and_errors(tmp_path):
    d = np.array([0.0, 1.0, 3.0]) * DT
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "delay": nir.Delay(delay=d),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        [("input", "delay"), ("delay", "output")],
    )
    x = RNG.normal(size=(10, 3))
    ref = np.zeros_like(x)
    for j, k in enumerate([0, 1, 3]):
        ref[k:, j] = x[: 10 - k, j]
    np.testing.assert_array_equal(nw.from_nir(g, dt=DT).run(x), ref)
    _check_file_round_trip(g, x, tmp_path, ref)
    g.nodes["delay"].delay = np.array([0.0, 1.5, 3.0]) * DT
    with pytest.raises(ValueError, match="'delay'.*integer multiples"):
        nw.from_nir(g, dt=DT)


def test_nested_subgraph_is_inlined_and_nested_again(tmp_path):
    w = RNG.normal(size=(6, 4))
    inner = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Linear(weight=w),
            "lif": _lif(6),
            "output": nir.Output(output_type={"output": np.array([6])}),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    g = _graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "sub": inner,
            "output": nir.Output(output_type={"output": np.array([6])}),
        },
        [("input", "sub"), ("sub", "output")],
    )
    x = _spikes(50, 4)
    ref = _ref_lif(inner.nodes["lif"], [w @ xt for xt in x])
    net = nw.from_nir(g, dt=DT)
    assert "sub.lif" in net.nodes
    np.testing.assert_array_equal(net.run(x), ref)
    g2 = nw.to_nir(net)
    assert isinstance(g2.nodes["sub"], nir.NIRGraph)
    np.testing.assert_array_equal(g2.nodes["sub"].nodes["fc"].weight, w)
    _check_file_round_trip(g, x, tmp_path, ref)


def _params(node):
    skip = {"metadata", "input_type", "output_type"}
    return {k: v for k, v in vars(node).items() if k not in skip}


def _assert_same_params(g1, g2):
    assert set(g1.nodes) == set(g2.nodes)
    for name, n1 in g1.nodes.items():
        n2 = g2.nodes[name]
        assert type(n1) is type(n2), name
        if isinstance(n1, nir.NIRGraph):
            _assert_same_params(n1, n2)
            continue
        p1, p2 = _params(n1), _params(n2)
        assert set(p1) == set(p2), name
        for k in p1:
            a, b = np.asarray(p1[k]), np.asarray(p2[k])
            assert a.dtype == b.dtype or a.dtype.kind not in "f", (name, k)
            np.testing.assert_array_equal(a, b, err_msg=f"{name}.{k}")
    assert sorted(g1.edges) == sorted(g2.edges)


def test_round_trip_reproduces_every_parameter_exactly_with_a_crossbar():
    g = _ff_lif_graph()
    g.nodes["fc"].weight = g.nodes["fc"].weight.astype(np.float32)  # dtypes survive too
    # ideal wires here keep the test fast (the effective-matrix path is tested in test_core)
    cfg = nw.CrossbarConfig(
        tile_shape=(3, 4), wiring=xbar.Wiring.ideal(), variability={"g_max": 0.02}
    )
    net = nw.from_nir(g, dt=DT, crossbar=cfg, key=jax.random.PRNGKey(0))
    assert net.nodes["fc"].on_crossbar
    g2 = nw.to_nir(net)
    _assert_same_params(g, g2)
    assert g2.metadata["dt"] == DT and "xbar.crossbar" in g2.metadata
    # the metadata rebuilds the same programmed network
    rebuilt = nw.from_nir(g2)
    assert isinstance(nw.crossbar_from_metadata(g2), nw.CrossbarConfig)
    assert nw.crossbar_from_metadata(g2).variability == {"g_max": 0.02}
    x = _spikes(40, 4)
    k = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(rebuilt.run(x, k), net.run(x, k))


def test_bad_graphs_name_node_and_field():
    g = _ff_lif_graph()
    with pytest.raises(ValueError, match="dt is required"):
        nw.from_nir(g)
    with pytest.raises(ValueError, match="dt"):
        nw.from_nir(g, dt=-1.0)
    g.nodes["lif"].r = np.ones(5)
    with pytest.raises(ValueError, match="'lif'.*'r'"):
        nw.from_nir(g, dt=DT)
    g = _ff_lif_graph()
    g.nodes["fc"].bias = np.ones(3)
    with pytest.raises(ValueError, match="'fc'.*'bias'"):
        nw.from_nir(g, dt=DT)
    g = _ff_lif_graph()
    g.nodes["fc"].weight = RNG.normal(size=(6, 5))
    with pytest.raises(ValueError, match="'input', 'fc'.*shape"):
        nw.from_nir(g, dt=DT)

    class Mystery(nir.NIRNode):
        def __init__(self):
            self.input_type = {"input": np.array([6])}
            self.output_type = {"output": np.array([6])}
            self.metadata = {}

    g = _ff_lif_graph()
    g.nodes["lif"] = Mystery()
    with pytest.raises(ValueError, match="'lif'.*unsupported NIR node type Mystery"):
        nw.from_nir(g, dt=DT)
    g = _ff_lif_graph()
    g.nodes["lif"].tau = -np.ones(6)
    with pytest.raises(ValueError, match="'lif'.*'tau'"):
        nw.from_nir(g, dt=DT)
    g = _ff_lif_graph()
    with pytest.raises(ValueError, match="key"):
        nw.from_nir(g, dt=DT, crossbar=nw.CrossbarConfig())


def test_refractory_period_and_precision_travel_in_xbar_metadata(tmp_path):
    # NIR has no field for a refractory period or a finite membrane register: to_nir writes
    # them into the node's xbar metadata, the file keeps them, from_nir restores them, and
    # the run is spike for spike the same (and differs from the run without them)
    g = _ff_lif_graph()
    g.nodes["lif"].r = np.full(6, 4.0)
    net = nw.from_nir(g, dt=DT)
    layer = net.nodes["lif"]
    neuron = eqx.tree_at(lambda n: n.t_ref, layer.neuron, jnp.full(6, 3 * DT))
    neuron = eqx.tree_at(
        lambda n: n.precision,
        neuron,
        nw.FixedPoint(bits=6, v_min=-2.0, v_max=2.0),
        is_leaf=lambda x: x is None,
    )
    net = eqx.tree_at(lambda n: n.nodes["lif"].neuron, net, neuron)
    g2 = nw.to_nir(net)
    assert "xbar.t_ref" in g2.nodes["lif"].metadata and "xbar.precision" in g2.nodes["lif"].metadata
    path = tmp_path / "ref.nir"
    nir.write(path, g2)
    back = nw.from_nir(nir.read(path))
    np.testing.assert_allclose(back.nodes["lif"].neuron.t_ref, 3 * DT)
    assert back.nodes["lif"].neuron.precision == neuron.precision
    x = _spikes(60, 4, p=0.6)
    y = np.asarray(net.run(x))
    np.testing.assert_array_equal(np.asarray(back.run(x)), y)
    assert not np.array_equal(np.asarray(nw.from_nir(g, dt=DT).run(x)), y)
