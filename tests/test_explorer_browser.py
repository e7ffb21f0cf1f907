"""The explorer page driven in a real headless Chromium: hover, click, the BPTT slider, the view switch.

The browser is Debian's ``chromium`` (``make setup-browser`` installs it with apt-get, as ``make setup``
installs Graphviz), driven by Playwright (the ``[browser]`` extra) through ``executable_path``:
Playwright's own browser download needs a CDN this project cannot rely on. Set
``TINYGRAPH_CHROMIUM`` to use another Chromium binary. One browser for the module, one page per test.
"""
import json
import os
import re
import shutil

import pytest

import visualize
from tinygraph_app.render import build_model, unrolled_graph

T = 5
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path():
    override = os.environ.get("TINYGRAPH_CHROMIUM")
    if override:
        return override if os.path.exists(override) else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _skip_reason():
    if shutil.which("dot") is None:
        return "Graphviz `dot` not installed (make setup installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright not installed: pip install -e '.[browser]' (make setup-browser)"
    if chromium_path() is None:
        return ("no Chromium found (chromium, chromium-browser, google-chrome, or TINYGRAPH_CHROMIUM): "
                "`sudo apt-get install chromium` (make setup-browser)")
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
        except Exception as exc:   # installed but cannot start here (no sandbox support, missing libs)
            pytest.skip(f"Chromium at {chromium_path()} could not be launched: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer_browser")
    op_graph = unrolled_graph(build_model("lstm", 2, 3, 1, seed=0, fused=False), T, 1, seed=0, grads=True)
    cell_graph = unrolled_graph(build_model("gru", 2, 3, 2, seed=0), T, 1, seed=0, grads=True)
    return {"op": (op_graph, visualize.explore(op_graph, folder / "op.html").path),
            "cell": (cell_graph, visualize.explore(cell_graph, folder / "cell.html", level="cell").path)}


@pytest.fixture
def open_page(browser):
    opened = []

    def open_(path):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
        page.requests = []
        page.on("request", lambda req: page.requests.append(req.url))
        page.goto("file://" + os.path.abspath(path))
        page.wait_for_selector(".tg-root[data-ready=true]", timeout=10_000)
        opened.append(page)
        return page
    yield open_
    for page in opened:
        assert not page.errors, page.errors
        assert all(url.startswith("file://") for url in page.requests), page.requests   # no network
        page.close()


def data_of(page):
    return json.loads(page.eval_on_selector("#tg-data", "e => e.textContent"))


def by_id(element_id):
    return f'[id="{element_id}"]'


def count(page, selector):
    return page.eval_on_selector_all(selector, "els => els.length")


def test_hover_shows_the_op_scope_shape_and_gradient(open_page, pages):
    page = open_page(pages["op"][1])
    data = data_of(page)
    target = "lstm/l0/forget_gate/sigmoid_0@2"
    assert page.is_hidden("#tg-tip")
    page.hover(by_id(target))
    page.wait_for_selector("#tg-tip", state="visible")
    assert "sigmoid" in page.inner_text("#tg-tip .tg-tip-op")
    tip = page.inner_text("#tg-tip")
    node = data["nodes"][target]
    for text in (node["scope"], "t=2", "(1, 3) float64", node["stats"], node["grad"]):
        assert text in tip, (text, tip)
    page.hover(by_id("weight_hh_l0_0_t=3"))    # a per-step reference to the shared weight
    assert "reference to a shared node, read at t=3" in page.inner_text("#tg-tip")
    assert "weight_hh_l0" in page.inner_text("#tg-tip .tg-tip-title")
    page.mouse.move(2, 2)
    page.wait_for_selector("#tg-tip", state="hidden")


def test_clicking_the_loss_highlights_every_path_into_it(open_page, pages, tmp_path):
    page = open_page(pages["op"][1])
    loss = data_of(page)["outputs"][0]
    page.click(by_id(loss))
    lit = count(page, "#tg-view-unrolled g.node.tg-on")
    assert lit >= T and int(page.get_attribute("#tg-selection", "data-count")) >= T
    assert count(page, "#tg-view-unrolled g.edge.tg-on") >= T
    for t in range(T):   # the gradient reaches every step's state
        assert "tg-on" in page.get_attribute(by_id(f"lstm/l0/h_0@{t}"), "class")
    assert "paths into it" in page.inner_text("#tg-selection")
    shot = tmp_path / "loss_paths.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a gate of step 2 reaches the loss through steps 2..T-1 only
    page.click(by_id("lstm/l0/forget_gate/sigmoid_0@2"))
    classes = {t: page.get_attribute(by_id(f"lstm/l0/h_0@{t}"), "class") for t in range(T)}
    assert all("tg-on" in classes[t] for t in range(2, T)) and "tg-on" not in classes[1]
    assert "tg-on" in page.get_attribute(by_id(loss), "class")
    assert "its paths to the loss" in page.inner_text("#tg-selection")
    page.keyboard.press("Escape")
    assert count(page, "g.node.tg-on") == 0 and page.inner_text("#tg-selection") == ""


def test_the_slider_plays_bptt_back_to_t0(open_page, pages, tmp_path):
    page = open_page(pages["op"][1])
    data = data_of(page)
    assert page.inner_text("#tg-step") == "t=0" and count(page, "#tg-view-unrolled .tg-dim") == 0
    page.focus("#tg-slider")
    page.keyboard.press("End")                  # backprop has only reached the last step
    assert page.inner_text("#tg-step") == f"t={T - 1}"
    at_last = page.inner_text("#tg-stepinfo")
    assert f"‖∂L/∂h_{T - 1}‖ = {data['steps'][-1]['states'][0]['text']}" in at_last
    assert "tg-dim" in page.get_attribute(by_id("lstm/l0/h_0@0"), "class")
    assert "tg-dim" not in page.get_attribute(by_id(f"lstm/l0/h_0@{T - 1}"), "class")
    assert count(page, "#tg-view-unrolled g.cluster.tg-now") == 1
    marker_last = page.get_attribute("#tg-marker", "x1")
    # drag the thumb with the mouse from the right end to the left end
    box = page.locator("#tg-slider").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] - 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=5)
    middle = page.inner_text("#tg-step")
    page.mouse.move(box["x"] + 1, y, steps=5)
    page.mouse.up()
    assert middle not in ("t=0", f"t={T - 1}")
    assert page.inner_text("#tg-step") == "t=0"
    at_zero = page.inner_text("#tg-stepinfo")
    assert at_zero != at_last and f"‖∂L/∂h_0‖ = {data['steps'][0]['states'][0]['text']}" in at_zero
    assert re.search(r"×[0-9.e+-]+ of t=4", at_zero)
    assert page.get_attribute("#tg-marker", "x1") != marker_last
    assert count(page, "#tg-view-unrolled .tg-dim") == 0
    page.click("#tg-play")                      # ▶ plays it from the last step back to t=0
    page.wait_for_function("document.getElementById('tg-step').textContent === 't=%d'" % (T - 1),
                           timeout=5_000)
    page.wait_for_function("document.getElementById('tg-step').textContent === 't=0' && "
                           "document.getElementById('tg-play').textContent.indexOf('play') >= 0",
                           timeout=10_000)
    shot = tmp_path / "bptt.png"
    page.screenshot(path=str(shot))
    assert shot.exists() and shot.stat().st_size > 10_000


def test_switching_views_keeps_the_selected_node(open_page, pages):
    page = open_page(pages["op"][1])
    page.click(by_id("lstm/l0/forget_gate/sigmoid_0@3"))
    page.click("#tg-show-folded")
    assert page.is_visible("#tg-view-folded") and page.is_hidden("#tg-view-unrolled")
    chosen = page.eval_on_selector_all("#tg-view-folded g.node.tg-selected", "els => els.map(e => e.id)")
    assert chosen and chosen[0].startswith("folded:lstm/l0/forget_gate/sigmoid_0@")
    page.hover(by_id(chosen[0]))
    assert "sigmoid" in page.inner_text("#tg-tip .tg-tip-op")
    page.focus("#tg-slider")
    page.keyboard.press("Home")
    for _ in range(2):
        page.keyboard.press("ArrowRight")       # the slider at t=2
    page.click("#tg-show-unrolled")
    back = page.eval_on_selector_all("#tg-view-unrolled g.node.tg-selected", "els => els.map(e => e.id)")
    assert back == ["lstm/l0/forget_gate/sigmoid_0@2"]   # the same op at the step the slider shows


def test_a_cell_level_page_explores_its_boxes(open_page, pages):
    graph, path = pages["cell"]
    page = open_page(path)
    boxes = page.eval_on_selector_all("#tg-view-unrolled g.node.group", "els => els.map(e => e.id)")
    assert len(boxes) == T
    page.hover(by_id(boxes[1]))
    assert "box at t=1" in page.inner_text("#tg-tip .tg-tip-title")
    page.click(by_id(data_of(page)["outputs"][0]))
    assert count(page, "#tg-view-unrolled g.node.group.tg-on") == T


def test_hostile_names_are_shown_as_text(open_page, tmp_path):
    from test_explorer import hostile_graph
    name = "</script><img src=x onerror=alert(1)>"
    path = visualize.explore(hostile_graph(name), tmp_path / "hostile.html").path
    page = open_page(path)
    assert count(page, "img") == 0
    state = next(i for i, n in data_of(page)["nodes"].items() if n["name"] == name and n["op"] == "tanh")
    page.hover(by_id(state))
    assert page.inner_text("#tg-tip .tg-tip-title") == name
