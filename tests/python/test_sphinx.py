"""The documentation site builds offline from docs/ with Sphinx, warnings as errors and nitpicky
references, and holds every page, the whole public Python API, the C++ API and the notebooks."""

from __future__ import annotations

import html
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest

import smartfunnel as sf

pytest.importorskip("sphinx", reason="sphinx is installed by .ci/setup")
pytest.importorskip("myst_nb", reason="myst-nb is installed by .ci/setup")
pytest.importorskip("breathe", reason="breathe is installed by .ci/setup")
if shutil.which("doxygen") is None:  # pragma: no cover - installed by .ci/setup
    pytest.skip("doxygen is installed by .ci/setup", allow_module_level=True)


@pytest.fixture(scope="module")
def site(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    env = dict(os.environ)
    # The package under test (an installed one or a checkout's python/ with the built module).
    package_parent = str(pathlib.Path(sf.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    started = time.monotonic()
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    run = subprocess.run(
        [*command, str(root / "docs"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == 0, f"sphinx-build failed:\n{run.stderr[-6000:]}"
    assert "WARNING" not in run.stderr and "ERROR" not in run.stderr, run.stderr
    return out, elapsed


def page(site, name: str) -> str:
    out, _ = site
    path = out / name
    assert path.is_file(), f"{name} is not in the built site"
    return path.read_text()


def ids(text: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', text))


def test_builds_quickly(site):
    _, elapsed = site
    assert elapsed < 120, f"the site took {elapsed:.0f} s to build"


def test_every_page_is_built_and_in_the_table_of_contents(root, site):
    sources = sorted(
        p.relative_to(root / "docs").with_suffix("")
        for pattern in ("*.md", "*.ipynb")
        for p in (root / "docs").rglob(pattern)
        if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )
    assert pathlib.Path("guide/fitting") in sources
    assert pathlib.Path("notebooks/quickstart") in sources
    index = page(site, "index.html")
    for source in sources:
        built = page(site, f"{source.as_posix()}.html")
        assert "<h1>" in built, source
        if source.as_posix() != "index":
            # the root's toctree links every page (so each is in the navigation)
            assert f'href="{source.as_posix()}.html"' in index, f"{source} is not in the toctree"


def test_internal_links_and_anchors_resolve(site):
    out, _ = site
    pages = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*.html")}
    anchors = {name: ids(text) for name, text in pages.items()}
    checked = 0
    for name, text in pages.items():
        if name.startswith("_"):
            continue
        for href in re.findall(r'href="([^"]+)"', text):
            href = html.unescape(href)
            if re.match(r"[a-z]+:", href) or href.startswith("_"):
                continue
            target, _, anchor = href.partition("#")
            target = target.split("?")[0]
            resolved = (
                name
                if not target
                else os.path.normpath(os.path.join(os.path.dirname(name), target)).replace(
                    os.sep, "/"
                )
            )
            if not resolved.endswith(".html"):
                assert (out / resolved).exists(), f"{name}: broken link {href}"
                continue
            assert resolved in pages, f"{name}: broken link {href}"
            if anchor:
                assert anchor in anchors[resolved], f"{name}: no anchor for {href}"
            checked += 1
    assert checked > 500


def test_python_api_documents_the_public_surface(site):
    text = page(site, "api/python.html")
    documented = ids(text)
    modules = {"datasets", "imports", "__version__"}
    missing = [n for n in sf.__all__ if n not in modules and f"smartfunnel.{n}" not in documented]
    assert not missing, f"public names missing from api/python.md: {missing}"
    for member in [
        "smartfunnel.FunnelModel.p_win",
        "smartfunnel.FunnelModel.win_probability",
        "smartfunnel.EventLog.from_frame",
        "smartfunnel.Forecast.quantile",
        "smartfunnel.Coaching.focus",
        "smartfunnel.Backtest.metrics",
        "smartfunnel.imports.from_snapshot",
        "smartfunnel.datasets.sample",
        "smartfunnel.plotting.plot_funnel",
    ]:
        assert member in documented, member
    # the docstrings themselves, rendered by napoleon (parameters as a field list)
    assert "Vectorised scoring" in text
    assert re.search(r"Parameters.*?confidence", text, flags=re.S)
    # the compiled module's classes are documented under their public names
    assert "smartfunnel.DataError" in documented and "smartfunnel.Funnel" in documented


def test_cpp_api_from_doxygen(root, site):
    out, _ = site
    text = page(site, "api/cpp.html")
    documented = ids(text)
    # the free function fit(event_log, fit_options) and the model's p_win overloads
    assert any(
        re.match(r"_CPPv4N11smartfunnel3fitERK9event_logRK11fit_options", i) for i in documented
    )
    assert "_CPPv4N11smartfunnel12funnel_modelE" in documented
    assert any(i.startswith("_CPPv4NK11smartfunnel12funnel_model5p_winE") for i in documented)
    assert "_CPPv4N11smartfunnel10data_errorE" in documented
    # the doc comments of the headers come through
    header = (root / "include" / "smartfunnel" / "funnel_model.hpp").read_text()
    assert "Merges models fitted on disjoint sets of opportunities" in header
    assert "Merges models fitted on disjoint sets of opportunities" in text
    # doxygen ran into the build tree; nothing of it is published or committed
    assert not (out / "doxygen").exists()
    assert not list((root / "docs").rglob("*.xml"))


def test_notebooks_are_rendered_without_being_executed(root, site):
    for nb in sorted((root / "docs" / "notebooks").glob("*.ipynb")):
        text = page(site, f"notebooks/{nb.stem}.html")
        assert "cell_input" in text, nb.name
    quick = page(site, "notebooks/quickstart.html")
    assert "sf.fit(" in html.unescape(re.sub(r"<[^>]+>", "", quick))


def test_every_method_cited_on_the_statistics_page_is_referenced(root, site):
    source = (root / "docs" / "statistics.md").read_text()
    body, _, references = source.partition("## References")
    entries = [line for line in references.splitlines() if line.startswith("- ")]
    listed = {(re.match(r"- (\w+)", e)[1], re.search(r"\((\d{4})\)", e)[1]) for e in entries}
    # citations "(Author & Other, 1958; Author, 1965)": first author and year of each
    cited = {
        (re.match(r"\s*(\w+)", c)[1], re.search(r"(\d{4})$", c.strip())[1])
        for group in re.findall(r"\(([^()]*?\b\d{4})\)", body)
        for c in group.split(";")
        if re.search(r"[A-Z]\w+.*\d{4}$", c.strip())
    }
    assert len(listed) >= 10
    assert cited == listed, cited ^ listed
    text = page(site, "statistics.html")
    assert text.count('href="https://doi.org/') >= 6 and 'id="references"' in text
