"""visualize.render and layout refuse what they cannot honour before drawing anything: a file name
whose suffix names no format they write, a timeout that is not a positive finite number of seconds."""
import shutil

import numpy as np
import pytest

import tinygraph as tg
import visualize

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def small_graph():
    w = tg.tensor(np.ones(2), requires_grad=True, name="w")
    return tg.Graph.of((tg.tanh(w) * 2).sum())


@pytest.mark.parametrize("name", ["pic.jpg", "pic.jpeg", "pic.svgz", "pic.txt", "pic", "pic.", ".svg",
                                  "pic.svg.bak", "dir.svg/pic"])
def test_render_refuses_a_suffix_it_cannot_write(name, tmp_path):
    with pytest.raises(ValueError, match=r"end the file name in \.svg, \.png, \.pdf, \.dot, \.gv or \.html"):
        visualize.render(small_graph(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,format", [("a.svg", "svg"), ("a.SVG", "svg"), ("a.png", "png"),
                                         ("a.Pdf", "pdf"), ("a.dot", "dot"), ("a.gv", "dot"),
                                         ("a.HTML", "html")])
def test_the_suffix_names_the_format(name, format):
    assert visualize.format_of(name) == format


@needs_dot
def test_each_format_is_what_its_suffix_says(tmp_path):
    starts = {".svg": b"<?xml", ".png": b"\x89PNG", ".pdf": b"%PDF", ".dot": b"digraph", ".gv": b"digraph"}
    for suffix, start in starts.items():
        path = visualize.render(small_graph(), tmp_path / f"g{suffix}")
        assert open(path, "rb").read().startswith(start), suffix
    # an explicit format wins over the suffix
    path = visualize.render(small_graph(), tmp_path / "picture.txt", format="dot")
    assert open(path, "rb").read().startswith(b"digraph")
    with pytest.raises(ValueError, match="format must be one of"):
        visualize.render(small_graph(), tmp_path / "g.svg", format="jpg")


@pytest.mark.parametrize("timeout", [float("inf"), float("-inf"), float("nan"), 0, 0.0, -1, -1e-9, True,
                                     "5", 1e400])
def test_layout_refuses_a_timeout_that_is_not_a_positive_finite_number(timeout, tmp_path):
    with pytest.raises(ValueError, match="timeout must be a positive finite number of seconds"):
        visualize.layout("digraph { a }", timeout=timeout)
    with pytest.raises(ValueError, match="timeout must be a positive finite number of seconds"):
        visualize.render(small_graph(), tmp_path / "g.svg", timeout=timeout)
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_a_timeout_of_none_means_no_limit(tmp_path):
    assert visualize.layout("digraph { a }", timeout=None).startswith(b"<?xml")
    assert visualize.check_timeout(0.5) == 0.5
