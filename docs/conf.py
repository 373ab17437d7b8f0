"""Sphinx configuration of the smartfunnel documentation site.

Build (offline; doxygen runs first, into the build tree, for the C++ API pages)::

    sphinx-build -W --keep-going -n docs docs/_build/html

The Python API is read from the importable ``smartfunnel`` package (install it, or put the
directory holding a built ``smartfunnel`` on PYTHONPATH). Notebooks are rendered as saved, never
executed here: the test suite executes them (tests/python/test_notebooks.py).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

from docutils import nodes

import smartfunnel

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "smartfunnel"
author = "the smartfunnel authors"
copyright = "smartfunnel authors, MIT licence"
release = smartfunnel.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",  # Markdown (myst-parser) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "breathe",
]

root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "examples"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# -- Markdown and notebooks ------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "deflist", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the tests execute the notebooks; the site shows them as saved
nb_merge_streams = True

# -- Python API ------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_preprocess_types = True
napoleon_use_ivar = True  # "Attributes" sections as fields, so autodoc members never repeat them
_PUBLIC_CLASSES = ["Funnel", "EventLog", "FitOptions", "FunnelModel", "Forecast", "Backtest"]
_PUBLIC_CLASSES += ["Coaching", "ActivityLog", "Report"]
# Short names used in annotations and docstrings, resolved to their documented targets.
napoleon_type_aliases = {
    "DataFrame": "pandas.DataFrame",
    "Series": "pandas.Series",
    **{name: f"smartfunnel.{name}" for name in _PUBLIC_CLASSES},
    "Progress": "smartfunnel.progress.Progress",
    "FitStatistics": "smartfunnel.dask.FitStatistics",
}
autodoc_type_aliases = {"GroupKey": "smartfunnel.GroupKey"}

# Third-party types (no intersphinx: the build is offline) and the compiled module's private path.
nitpick_ignore_regex = [
    ("py:class", r"(pandas|pd|numpy|np|matplotlib|collections\.abc|typing|os)\..*"),
    ("py:class", r"(DataFrame|Series|Timestamp|ndarray|Axes|PathLike)"),
    # The compiled handles behind the wrappers' ``core`` properties (not part of the Python API).
    ("py:class", r"smartfunnel\._core\.(EventLog|FitOptions|FunnelModel|ActivityLog|Funnel)"),
    ("py:class", r"smartfunnel\._core\.FitStatistics"),
    # Dask's own types in smartfunnel.dask's annotations.
    ("py:class", r"(dask|dd|distributed)\..*|Delayed"),
    # A module's private helper class, named by a public method's return annotation.
    ("py:class", r"smartfunnel\.[a-z]\w*\._\w+"),
    # Plain-English types of numpy-style docstrings ("start : date-like", "groups : sequence").
    (
        "py:class",
        r"(time|date|duration|path|array|scalar|file)-like|sequence|mapping|callable|distribution"
        r"|paths?|CSV path",
    ),
]

# C++: the serialization concept (breathe does not render C++20 concepts).
nitpick_ignore = [("cpp:identifier", "persistent")]

# -- C++ API (doxygen XML, generated into the build tree at every build) ---------------------------
breathe_default_project = "smartfunnel"
breathe_domain_by_extension = {"hpp": "cpp"}
breathe_default_members = ("members",)

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"smartfunnel {release}"
html_theme_options = {
    "description": "Censoring-aware B2B sales funnel models",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_static_path: list[str] = []


def _run_doxygen(app) -> None:  # type: ignore[no-untyped-def]
    """Run doxygen over include/smartfunnel into <doctrees>/doxygen and point breathe at its XML."""
    doxygen = shutil.which("doxygen")
    if doxygen is None:
        raise RuntimeError("doxygen is needed for the C++ API pages (apt-get install doxygen)")
    out = pathlib.Path(app.doctreedir) / "doxygen"  # beside the doctrees, not in the site
    out.mkdir(parents=True, exist_ok=True)
    config = (DOCS / "Doxyfile").read_text()
    config += f'\nINPUT = "{ROOT / "include" / "smartfunnel"}"\nOUTPUT_DIRECTORY = "{out}"\n'
    subprocess.run([doxygen, "-"], input=config.encode(), check=True, capture_output=True)
    app.config.breathe_projects = {"smartfunnel": str(out / "xml")}


def _core_property_docstrings(app, what, name, obj, options, lines):  # type: ignore
    """The compiled module's property docstrings read "Label: text"; napoleon would take the label
    for a type, so the first colon becomes a dash (the bindings' text is not changed here)."""
    del app, obj, options
    if what == "property" and name.startswith("smartfunnel.Funnel.") and lines:
        lines[0] = re.sub(r"^([^:`]+): ", r"\1 — ", lines[0])


def _doxygen_refs(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Links breathe leaves as `:ref:` to doxygen ids: a class or struct links to its anchor on the
    C++ API page; a header (``*_8hpp``, from "Defined in" lines) has no page and stays text."""
    del env
    target = node.get("reftarget", "")
    if node.get("reftype") != "ref" or not re.fullmatch(r"[a-z0-9_]+", target):
        return None
    if target.endswith("_8hpp"):
        return contnode
    if re.match(r"(class|struct)smartfunnel_1_1", target):
        ref = nodes.reference("", "", internal=True)
        ref["refuri"] = app.builder.get_relative_uri(node["refdoc"], "api/cpp") + "#" + target
        ref.append(contnode)
        return ref
    return None


def _package_relative_refs(app, env, node, contnode):  # type: ignore
    """A Python reference that does not resolve where it is written (``EventLog.from_frame`` in
    ``smartfunnel.imports``) resolves from the package root, where the public names live."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or target.startswith("smartfunnel."):
        return None
    domain = env.domains["py"]
    retry = node.deepcopy()
    retry["reftarget"] = f"smartfunnel.{target.lstrip('.~')}"
    retry["py:module"] = None
    retry["py:class"] = None
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], retry["reftarget"], retry, contnode
    )


def _dataclass_factory_defaults(app, what, name, obj, options, signature, returns):  # type: ignore
    """A dataclass field with a default_factory shows as ``= <factory>``, which the signature
    parser cannot read (it then splits ``tuple[str, ...]`` at the comma): show ``= ...``."""
    del app, what, name, obj, options
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), returns
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", _run_doxygen)
    app.connect("missing-reference", _doxygen_refs)
    app.connect("missing-reference", _package_relative_refs)
    app.connect("autodoc-process-signature", _dataclass_factory_defaults)
    # before napoleon (priority 500) reads the docstrings
    app.connect("autodoc-process-docstring", _core_property_docstrings, priority=400)
