// The tinygraph explorer's script (see visualize/explore.py): hover, paths to the loss, BPTT playback,
// folded/unrolled switch. Plain DOM, no libraries; all text is set with textContent.
(function () {
  "use strict";
  var root = document.querySelector(".tg-root");
  var data = JSON.parse(document.getElementById("tg-data").textContent);
  var nodes = data.nodes, steps = data.steps;
  var succ = {}, pred = {}, outputs = {};
  Object.keys(nodes).forEach(function (id) { succ[id] = []; pred[id] = []; });
  data.edges.forEach(function (e) { succ[e[0]].push(e[1]); pred[e[1]].push(e[0]); });
  data.outputs.forEach(function (id) { outputs[id] = true; });

  // every node reachable from start (included), iterative; keep(id) limits the walk
  function reach(start, adjacency, keep) {
    var seen = {}, stack = start.slice();
    start.forEach(function (id) { seen[id] = true; });
    while (stack.length) {
      var next = adjacency[stack.pop()] || [];
      for (var k = 0; k < next.length; k++) {
        if (!seen[next[k]] && (!keep || keep(next[k]))) { seen[next[k]] = true; stack.push(next[k]); }
      }
    }
    return seen;
  }
  var towardsLoss = reach(data.outputs, pred);   // nodes with a path to the loss

  // --- the pictures --------------------------------------------------------------------------
  var views = {};
  Object.keys(data.views).forEach(function (name) {
    var box = root.querySelector('.tg-view[data-view="' + name + '"]');
    var info = data.views[name], v = {name: name, box: box, info: info, byId: {}, family: {}, edges: [],
                                      clusters: [], svg: box.querySelector("svg"), zoom: 1};
    Array.prototype.forEach.call(box.querySelectorAll("g"), function (g) {
      if (g.id) { v.byId[g.id] = g; }
    });
    Array.prototype.forEach.call(box.querySelectorAll("title"), function (t) { t.remove(); });
    Array.prototype.forEach.call(box.querySelectorAll("a"), function (a) {
      a.removeAttribute("xlink:title"); a.removeAttribute("title");
      a.addEventListener("click", function (event) { event.preventDefault(); });
    });
    Object.keys(info.elements).forEach(function (id) {
      info.elements[id].nodes.forEach(function (n) {
        var f = nodes[n].family;
        (v.family[f] = v.family[f] || []).push(id);
      });
    });
    Object.keys(info.edges).forEach(function (id) { if (v.byId[id]) { v.edges.push(id); } });
    Object.keys(info.steps).forEach(function (id) {
      if (v.byId[id]) { v.clusters.push([v.byId[id], info.steps[id]]); }
    });
    v.baseWidth = parseFloat(v.svg.getAttribute("width"));
    v.baseHeight = parseFloat(v.svg.getAttribute("height"));
    views[name] = v;
  });
  var current = views[data.view] ? data.view : Object.keys(views)[0];

  // --- hover: the tooltip ------------------------------------------------------------------
  var tip = document.getElementById("tg-tip");
  function line(parent, key, value, cls) {
    var div = document.createElement("div");
    if (cls) { div.className = cls; }
    if (key) {
      var k = document.createElement("span");
      k.className = "tg-key"; k.textContent = key + ": ";
      div.appendChild(k);
    }
    div.appendChild(document.createTextNode(value));
    parent.appendChild(div);
    return div;
  }
  function nodeTitle(n) { return n.name || n.op || n.kind; }
  function describe(parent, id) {
    var n = nodes[id];
    line(parent, "", nodeTitle(n), "tg-tip-title");
    line(parent, "op", n.op ? n.op + (n.attrs ? "(" + n.attrs + ")" : "") : n.kind, "tg-tip-op");
    line(parent, "scope", n.scope || "(none)");
    line(parent, "id", id);
    if (n.t !== null) { line(parent, "time step", "t=" + n.t); }
    line(parent, "shape", "(" + n.shape.join(", ") + (n.shape.length === 1 ? "," : "") + ") " + n.dtype);
    line(parent, "value", n.stats);
    line(parent, "‖∂L/∂·‖", n.grad, "tg-tip-grad");
  }
  function showTip(element, entry, event) {
    tip.textContent = "";
    if (entry.kind === "node" || entry.kind === "ref") {
      if (entry.kind === "ref") {
        line(tip, "", "reference to a shared node" + (entry.t !== null ? ", read at t=" + entry.t : ""),
             "tg-key");
      }
      describe(tip, entry.nodes[0]);
    } else {
      var title = (entry.kind === "group" ? "box" : entry.kind === "io" ? "inputs/outputs" : entry.kind) +
        (entry.t !== null ? " at t=" + entry.t : "") + ": " + entry.nodes.length + " nodes";
      line(tip, "", title, "tg-tip-title");
      var ops = {};
      entry.nodes.forEach(function (id) {
        var k = nodes[id].op || nodes[id].kind;
        ops[k] = (ops[k] || 0) + 1;
      });
      var counted = Object.keys(ops).map(function (k) { return k + (ops[k] > 1 ? "×" + ops[k] : ""); });
      line(tip, "ops", counted.join(", "), "tg-tip-op");
      entry.nodes.forEach(function (id) {
        var n = nodes[id];
        if (n.name && n.grad !== "—") { line(tip, n.name, "‖∂L/∂·‖ = " + n.grad); }
      });
    }
    tip.hidden = false;
    moveTip(event);
  }
  function moveTip(event) {
    var x = event.clientX + 14, y = event.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth) { x = Math.max(0, event.clientX - w - 14); }
    if (y + h > window.innerHeight) { y = Math.max(0, event.clientY - h - 14); }
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function entryOf(target, v) {
    var g = target.closest ? target.closest("g.node") : null;
    if (!g || !v.info.elements[g.id]) { return null; }
    return [g, v.info.elements[g.id]];
  }

  // --- click: every path to the loss ---------------------------------------------------------
  var selected = null;   // {ids: [stable ids], family: ..., t: ...}
  var selection = document.getElementById("tg-selection");
  function pathSet(ids) {
    var isEnd = ids.every(function (id) { return outputs[id] || succ[id].length === 0; });
    if (isEnd) {   // the loss: every path into it that its gradient flows back along
      return reach(ids, pred, function (id) { return nodes[id].requires_grad; });
    }
    var down = reach(ids, succ), on = {};
    Object.keys(down).forEach(function (id) { if (towardsLoss[id]) { on[id] = true; } });
    ids.forEach(function (id) { on[id] = true; });
    return on;
  }
  function paint() {
    var on = selected ? selected.on : null;
    Object.keys(views).forEach(function (name) {
      var v = views[name], elements = v.info.elements;
      v.box.classList.toggle("tg-faded", !!on);
      Object.keys(elements).forEach(function (id) {
        var g = v.byId[id];
        if (!g) { return; }
        var lit = !!on && elements[id].nodes.some(function (n) { return on[n]; });
        g.classList.toggle("tg-on", lit);
        g.classList.remove("tg-selected");
      });
      v.edges.forEach(function (id) {
        var ends = v.info.edges[id];
        var lit = !!on && v.byId[ends[0]].classList.contains("tg-on") &&
          v.byId[ends[1]].classList.contains("tg-on");
        v.byId[id].classList.toggle("tg-on", lit);
      });
      var mine = selected && selected.view === name ? selected.element : null;
      if (mine && v.byId[mine]) { v.byId[mine].classList.add("tg-selected"); }
    });
  }
  // the element of view v that draws the selection: itself, else the same op (its family) at the
  // selection's step (the folded cell's op stands for every step: the slider's step when it moved)
  function elementFor(v, sel) {
    if (v.name === sel.view) { return sel.element; }
    var candidates = (v.family[sel.family] || []).filter(function (id) { return v.byId[id]; });
    var real = candidates.filter(function (id) { return v.info.elements[id].kind === "node"; });
    var atT = real.filter(function (id) { return v.info.elements[id].t === sel.t; });
    return atT[0] || real[0] || candidates[0] || null;
  }
  function select(g, entry, viewName) {
    var ids = entry.nodes, on = pathSet(ids), count = Object.keys(on).length;
    var t = views[viewName].info.elements[g.id].t;
    selected = {ids: ids, on: on, element: g.id, view: viewName, family: nodes[ids[0]].family,
                t: t !== null ? t : currentT()};
    paint();
    var first = nodes[ids[0]];
    var what = entry.kind === "node" || entry.kind === "ref" ?
      nodeTitle(first) + " (" + (first.op || first.kind) + ")" : entry.nodes.length + " nodes";
    var isEnd = ids.every(function (id) { return outputs[id] || succ[id].length === 0; });
    selection.textContent = "selected " + what + ": " + count + " nodes on " +
      (isEnd ? "the paths into it (all its gradient flows back through)" :
       count > ids.length ? "its paths to the loss" : "no path to the loss") +
      " · Esc or click the background to clear";
    selection.dataset.count = String(count);
  }
  function clear() { selected = null; selection.textContent = ""; selection.dataset.count = "0"; paint(); }

  Object.keys(views).forEach(function (name) {
    var v = views[name];
    v.box.addEventListener("mouseover", function (event) {
      var hit = entryOf(event.target, v);
      if (hit) { showTip(hit[0], hit[1], event); } else { tip.hidden = true; }
    });
    v.box.addEventListener("mousemove", function (event) { if (!tip.hidden) { moveTip(event); } });
    v.box.addEventListener("mouseleave", function () { tip.hidden = true; });
    v.box.addEventListener("click", function (event) {
      var hit = entryOf(event.target, v);
      if (hit) { select(hit[0], hit[1], name); } else { clear(); }
    });
  });
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") { clear(); } });

  // --- folded / unrolled ----------------------------------------------------------------------
  function show(name) {
    current = name;
    Object.keys(views).forEach(function (n) { views[n].box.hidden = n !== name; });
    Array.prototype.forEach.call(root.querySelectorAll(".tg-switch"), function (b) {
      b.classList.toggle("tg-active", b.dataset.view === name);
    });
    if (selected) {
      var v = views[name], mine = elementFor(v, selected), t = selected.t;
      if (mine && v.byId[mine]) {
        select(v.byId[mine], v.info.elements[mine], name);
        if (v.info.elements[mine].t === null) { selected.t = t; }   // the folded cell keeps the step
        if (v.byId[mine].scrollIntoView) { v.byId[mine].scrollIntoView({block: "center", inline: "center"}); }
      } else { clear(); }
    }
  }
  Array.prototype.forEach.call(root.querySelectorAll(".tg-switch"), function (b) {
    b.addEventListener("click", function () { show(b.dataset.view); });
  });

  // --- zoom -----------------------------------------------------------------------------------
  function zoom(factor, fit) {
    var v = views[current];
    v.zoom = fit ? (v.box.parentNode.clientWidth - 4) / (v.baseWidth * 4 / 3) : v.zoom * factor;
    v.svg.style.width = (v.baseWidth * v.zoom) + "pt";
    v.svg.style.height = (v.baseHeight * v.zoom) + "pt";
  }
  document.getElementById("tg-zoom-in").addEventListener("click", function () { zoom(1.25); });
  document.getElementById("tg-zoom-out").addEventListener("click", function () { zoom(0.8); });
  document.getElementById("tg-zoom-fit").addEventListener("click", function () { zoom(1, true); });

  // --- the time slider: BPTT played back -----------------------------------------------------
  var slider = document.getElementById("tg-slider");
  function currentT() { return slider && steps.length ? steps[Number(slider.value)].t : null; }
  function setStep(k) {
    var step = steps[k], t = step.t, lastStep = steps[steps.length - 1];
    slider.value = String(k);
    var v = views.unrolled;
    if (v) {
      Object.keys(v.info.elements).forEach(function (id) {
        var et = v.info.elements[id].t, g = v.byId[id];
        if (g) { g.classList.toggle("tg-dim", et !== null && et < t); }
      });
      v.edges.forEach(function (id) {
        var ends = v.info.edges[id], a = v.info.elements[ends[0]].t, b = v.info.elements[ends[1]].t;
        v.byId[id].classList.toggle("tg-dim", (a !== null && a < t) || (b !== null && b < t));
      });
      v.clusters.forEach(function (c) {
        c[0].classList.toggle("tg-dim", c[1] < t);
        c[0].classList.toggle("tg-now", c[1] === t);
      });
    }
    document.getElementById("tg-step").textContent = "t=" + t;
    var info = document.getElementById("tg-stepinfo");
    info.textContent = "";
    step.states.forEach(function (s) {
      var last = lastStep.states.filter(function (x) { return x.series === s.series; })[0];
      var ratio = s.norm !== null && last && last.norm ? " (×" + (s.norm / last.norm).toPrecision(2) +
        " of t=" + lastStep.t + ")" : "";
      var span = document.createElement("span");
      span.className = "tg-norm";
      span.dataset.series = s.series;
      span.textContent = "‖∂L/∂" + s.name + "_" + t + "‖" + (s.loop ? " (" + s.loop + ")" : "") + " = " +
        s.text + ratio + "   ";
      info.appendChild(span);
    });
    var marker = document.getElementById("tg-marker");
    if (marker) {
      marker.setAttribute("x1", data.chart.x[k]);
      marker.setAttribute("x2", data.chart.x[k]);
    }
  }
  var timer = null, play = document.getElementById("tg-play");
  function stop() {
    if (timer) { clearInterval(timer); timer = null; }
    if (play) { play.textContent = "▶ play BPTT"; }
  }
  if (slider && steps.length) {
    slider.addEventListener("input", function () {
      stop();
      setStep(Number(slider.value));
      if (selected && current !== "unrolled") { selected.t = currentT(); }   // back to this step's op
    });
    play.addEventListener("click", function () {
      if (timer) { stop(); return; }
      var k = steps.length - 1;
      setStep(k);
      play.textContent = "❚❚ pause";
      timer = setInterval(function () {
        k -= 1;
        if (k < 0) { stop(); return; }
        setStep(k);
      }, Math.max(40, Math.min(400, 4000 / steps.length)));
    });
    setStep(0);
  }
  show(current);
  root.dataset.ready = "true";
})();
