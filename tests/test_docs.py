"""Every public name has a docstring of its own, and ``make docs`` builds the API reference.

A **public name** is, in the packages ``tinygraph``, ``rnn_models``, ``visualize`` and
``tinygraph_app`` and every module under them (found by walking the packages with ``pkgutil``, so a
module added later is checked too) whose dotted path has no part starting with ``_``:

1. each name in a package's ``__all__`` (every package defines one; it must list exactly the
   package's public non-module attributes, so an export cannot be added without it);
2. each module-level name without a leading ``_`` that the module's own source binds (``def``,
   ``class`` or an assignment such as ``is_grad_enabled = ...``) to a function, builtin or class;
3. each method, classmethod, staticmethod or property without a leading ``_`` (so dunder methods and
   ``__init__`` are excluded: a class docstring states its constructor's arguments) in the
   ``__dict__`` of a class counted by 1 or 2 — Tensor's operator-free methods among them.

It is **documented** when it has a docstring of its own of at least two words: a class's own
``__doc__`` (not one inherited from ``Exception`` or ``object``), a routine's own, or for a method
that overrides a method of one of these packages' base classes, the overridden method's (as pdoc and
``inspect.getdoc`` show it). A method bound to an object from elsewhere has that type's generic
text (``is_grad_enabled = var.get`` would show ContextVar's "Return a value for the context variable
..."): undocumented; a function of another package keeps its own (``NUMPY_VJP.where`` is
``np.where``). Data in an ``__all__`` (``CELL_KINDS``, ``LEVELS``) is documented by a string literal
right after its assignment (an attribute docstring, which pdoc shows) in the module that assigns it.
"""
import ast
import contextvars
import importlib
import inspect
import pkgutil
import sys
import textwrap
import warnings

import pytest

from tinygraph_app import apidocs

PACKAGES = apidocs.PACKAGES


def public_modules(packages=PACKAGES):
    """Every public module of ``packages``, each package before its modules, in pkgutil's (sorted)
    order."""
    for root in packages:
        package = importlib.import_module(root)
        yield package
        for info in pkgutil.walk_packages(package.__path__, root + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                yield importlib.import_module(info.name)


def top_level_bindings(module):
    """``({name: ast node}, {name: attribute docstring})`` for the names the module's source binds
    at top level (def, class, assignment)."""
    tree = ast.parse(inspect.getsource(module))
    bound, attribute_docs = {}, {}
    for k, node in enumerate(tree.body):
        names = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names += [e.id for e in getattr(target, "elts", [target]) if isinstance(e, ast.Name)]
            following = tree.body[k + 1] if k + 1 < len(tree.body) else None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant) \
                    and isinstance(following.value.value, str):
                attribute_docs.update((name, following.value.value) for name in names)
        bound.update((name, node) for name in names)
    return bound, attribute_docs


def has_words(doc):
    """A docstring worth the name: at least two words."""
    return isinstance(doc, str) and len(doc.split()) >= 2


class Checker:
    """Finds the public names of ``packages`` and their docstrings (the rules: this module's
    docstring)."""

    def __init__(self, packages=PACKAGES):
        self.packages = packages
        self.modules = list(public_modules(packages))
        self.bindings = {m.__name__: top_level_bindings(m) for m in self.modules}

    def ours(self, obj):
        """Whether ``obj`` (a routine or class) was defined in one of the packages."""
        return (getattr(obj, "__module__", None) or "").split(".")[0] in self.packages

    def own_doc(self, obj):
        """A routine's or class's docstring if it was written for it: one of ours, or a function of
        another package (``NUMPY_VJP.where`` is ``np.where``), never a bound method's (ContextVar.get
        on a context variable tells nothing about the variable) nor one a class inherits."""
        if inspect.isclass(obj):
            return vars(obj).get("__doc__") if self.ours(obj) else obj.__doc__
        if not self.ours(obj) and not inspect.ismodule(getattr(obj, "__self__", None) or sys):
            return None
        return obj.__doc__

    def method_doc(self, cls, name):
        """The docstring ``cls.<name>`` shows: its own, else that of the method it overrides in a
        base class of ours."""
        for base in cls.__mro__:
            if not self.ours(base):
                return None
            member = vars(base).get(name)
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if isinstance(member, property):
                doc = member.__doc__
            elif member is None or not callable(member):
                continue
            else:
                doc = self.own_doc(member)
            if has_words(doc):
                return doc
        return None

    def data_doc(self, name, value):
        """The attribute docstring of ``name`` in the module whose source assigns ``value`` to it."""
        for module in self.modules:
            bound, docs = self.bindings[module.__name__]
            if name in bound and getattr(module, name, None) is value:
                return docs.get(name)
        return None

    def public_names(self):
        """``[(qualified name, docstring or None)]`` for every public name, each object once (an
        alias such as ``tensor = Tensor`` under its first name)."""
        seen, found, classes = set(), [], []

        def add(qualname, obj, doc):
            if id(obj) not in seen:
                seen.add(id(obj))
                found.append((qualname, doc))
                if inspect.isclass(obj) and self.ours(obj):
                    classes.append((qualname, obj))

        for module in self.modules:  # first what each module defines, under its home's name
            for name in self.bindings[module.__name__][0]:
                obj = getattr(module, name, None)
                if not name.startswith("_") and (inspect.isroutine(obj) or inspect.isclass(obj)):
                    add(f"{module.__name__}.{name}", obj, self.own_doc(obj))
        for module in self.modules:
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name)
                if not inspect.ismodule(obj):
                    api = inspect.isroutine(obj) or inspect.isclass(obj)
                    add(f"{module.__name__}.{name}", obj,
                        self.own_doc(obj) if api else self.data_doc(name, obj))
        for qualname, cls in classes:
            for name, member in vars(cls).items():
                if not name.startswith("_") and (isinstance(member, (classmethod, staticmethod, property))
                                                 or inspect.isroutine(member)):
                    found.append((f"{qualname}.{name}", self.method_doc(cls, name)))
        return found

    def undocumented(self):
        return [qualname for qualname, doc in self.public_names() if not has_words(doc)]


@pytest.fixture(scope="module")
def checker():
    return Checker()


def test_every_public_name_has_a_docstring(checker):
    missing = checker.undocumented()
    assert not missing, (f"{len(missing)} public names without a docstring of their own (the rules: "
                         f"tests/test_docs.py's docstring):\n  " + "\n  ".join(missing))


def test_the_walk_sees_the_public_api(checker):
    names = dict(checker.public_names())  # each object under its home module's name
    for expected in ("tinygraph.tensor.Tensor", "tinygraph.modes.is_grad_enabled",
                     "tinygraph.functional.exp", "tinygraph.tensor.Tensor.exp", "tinygraph.tensor.Tensor.shape",
                     "tinygraph.ops.base.Op.vjp", "rnn_models.layers.LSTM", "rnn_models.CELL_KINDS",
                     "rnn_models.layers.RecurrentLayer.forward", "visualize.dot.to_dot", "visualize.LEVELS",
                     "tinygraph_app.apidocs.build"):
        assert expected in names, expected
    assert len(names) > 900
    assert "tinygraph.tensor.Tensor.__add__" not in names and "tinygraph.tensor.Tensor.__init__" not in names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_what_each_package_exports(checker, package):
    for module in checker.modules:
        if module.__name__.split(".")[0] != package or not hasattr(module, "__path__"):
            continue
        assert hasattr(module, "__all__"), f"package {module.__name__} has no __all__"
        absent = [name for name in module.__all__ if not hasattr(module, name)]
        assert not absent, f"{module.__name__}.__all__ names what it does not have: {absent}"
        assert len(set(module.__all__)) == len(module.__all__), f"{module.__name__}.__all__ repeats names"
        exported = {name for name, value in vars(module).items()
                    if not name.startswith("_") and not inspect.ismodule(value)}
        unlisted = sorted(exported - set(module.__all__))
        assert not unlisted, (f"{module.__name__} exports {unlisted} without listing them in its "
                              f"__all__; add them there")


FIXTURE = {
    "__init__.py": '''
        """A package for the checker's own test."""
        from .mod import Documented, documented, undocumented_function
        __all__ = ["Documented", "documented", "undocumented_function", "LIMIT", "BARE"]
        LIMIT = 3
        """The largest number of things."""
        BARE = 4
    ''',
    "mod.py": '''
        """A module."""
        import contextvars
        _var = contextvars.ContextVar("v", default=0)
        read_var = _var.get
        def documented():
            """Does a thing."""
        def undocumented_function():
            pass
        def one_word():
            """Thing."""
        def _private():
            pass
        class Documented(Exception):
            """A documented error."""
            def method(self):
                """Does it."""
            def bare(self):
                pass
            @property
            def size(self):
                return 1
            def __add__(self, other):
                pass
        class Sub(Documented):
            def method(self):
                return 2
        class Inherits(Exception):
            pass
    ''',
}


def test_the_checker_fails_on_each_kind_of_missing_docstring(tmp_path, monkeypatch):
    package = tmp_path / "docfixture"
    package.mkdir()
    for name, text in FIXTURE.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        missing = Checker(("docfixture",)).undocumented()
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "docfixture"]:
            del sys.modules[name]
    assert missing == ["docfixture.mod.read_var", "docfixture.mod.undocumented_function",
                       "docfixture.mod.one_word", "docfixture.mod.Sub", "docfixture.mod.Inherits",
                       "docfixture.BARE", "docfixture.mod.Documented.bare", "docfixture.mod.Documented.size"]
    # Sub.method overrides a documented method: it shows Documented.method's docstring


def test_is_grad_enabled_is_a_documented_function():
    import tinygraph as tg
    assert inspect.isfunction(tg.is_grad_enabled)
    assert "no_grad" in tg.is_grad_enabled.__doc__
    assert tg.is_grad_enabled.__doc__ != contextvars.ContextVar("x").get.__doc__
    with tg.no_grad():
        assert tg.is_grad_enabled() is False
    assert tg.is_grad_enabled() is True


# --- make docs -----------------------------------------------------------------------------------
# ``make docs`` builds every public module (about 5 s on a quiet machine, 15 s on a busy one); the
# tests build the package pages and three modules, which is what the checks below read (2 s).
SAMPLE = PACKAGES + ("tinygraph.graph", "rnn_models.registry", "tinygraph_app.apidocs")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("pdoc")
    out = tmp_path_factory.mktemp("api") / "docs"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        left_out = apidocs.build(out, modules=SAMPLE)
    return out, left_out, [f"{w.category.__name__}: {w.message}" for w in caught]


def test_make_docs_documents_every_public_module(checker):
    names, left_out = apidocs.public_modules()
    assert names == [m.__name__ for m in checker.modules] and left_out == {}


def test_the_build_writes_a_page_per_module_and_an_index_without_warnings(built):
    out, left_out, caught = built
    assert not caught, caught
    assert left_out == {}
    pages = {str(p.relative_to(out).with_suffix("")).replace("/", ".") for p in out.rglob("*.html")}
    assert pages == set(SAMPLE) | {"index"}
    assert (out / "search.js").stat().st_size > 0
    index = (out / "index.html").read_text()
    assert all(f'href="{name.replace(".", "/")}.html"' in index for name in SAMPLE)


@pytest.mark.parametrize("page, texts", [
    ("tinygraph.html", ["Tensor", "is_grad_enabled", "Whether ops built here record the graph", "no_grad",
                        "value_and_grad", 'href="tinygraph/graph.html"']),  # a submodule not in __all__
    ("tinygraph/graph.html", ["Graph", "toposort", "The tensors step <code>t</code> read as its state"]),
    ("rnn_models.html", ["LSTM", "CELL_KINDS", "the built-in cell kinds", "Trainer"]),  # the docstring
    ("visualize.html", ["to_dot", "render", "explore", "LEVELS"]),                     # of a re-export
    ("tinygraph_app.html", ['href="tinygraph_app/apidocs.html"']),
])
def test_the_reference_shows_the_public_api(built, page, texts):
    text = (built[0] / page).read_text()
    for expected in texts:
        assert expected in text, f"{page} does not show {expected!r}"


def test_a_rebuild_replaces_the_old_tree_and_can_be_limited_to_modules(tmp_path):
    pytest.importorskip("pdoc")
    out = tmp_path / "docs"
    out.mkdir()
    (out / "stale.html").write_text("the page of a module that is gone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        apidocs.build(out, modules=["tinygraph.modes"])
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "search.js", "tinygraph"]
    assert [p.name for p in (out / "tinygraph").iterdir()] == ["modes.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]  # no temporary directory left
    with pytest.raises(ValueError, match="tinygraph.nope is not a public module"):
        apidocs.build(out, modules=["tinygraph.nope"])
    assert (out / "tinygraph" / "modes.html").exists()  # a refused build leaves the old tree


def test_a_module_needing_an_absent_extra_is_left_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # as if the test extra were not installed
    monkeypatch.delitem(sys.modules, "tinygraph.testing", raising=False)
    names, left_out = apidocs.public_modules()
    assert left_out == {"tinygraph.testing": "hypothesis"}
    assert "tinygraph.testing" not in names and "tinygraph.tensor" in names


def test_missing_pdoc_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pdoc", None)
    assert apidocs.main([str(tmp_path / "docs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'tinygraph[docs]'" in err
    assert not (tmp_path / "docs").exists()


def test_bad_command_lines_are_one_line(capsys):
    assert apidocs.main([]) == 2 and "usage:" in capsys.readouterr().err
    pytest.importorskip("pdoc")
    assert apidocs.main(["/nonexistent-dir-for-the-test/docs", "visualize.nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "visualize.nope is not a public module" in err
