"""Packaging: version, public names, and a clean `pip install .` into a fresh virtual environment."""

from __future__ import annotations

import os
import re
import subprocess
import venv

import pytest

import smartfunnel as sf


def test_version_matches_cmake_project(root):
    text = (root / "CMakeLists.txt").read_text()
    version = re.search(r"project\(smartfunnel\s+VERSION\s+([0-9.]+)", text).group(1)
    assert sf.__version__ == version


def test_public_names_exist():
    for name in sf.__all__:
        assert hasattr(sf, name), name


def test_typed_package_ships_stubs():
    import pathlib

    pkg = pathlib.Path(sf.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_core.pyi").exists()


@pytest.mark.slow
def test_pip_install_into_fresh_venv(root, tmp_path):
    """`pip install .` into a new venv (offline, from the wheelhouse set-up filled), import elsewhere."""
    wheelhouse = root / "build" / "wheelhouse"
    if not wheelhouse.is_dir():
        pytest.fail(f"{wheelhouse} is missing: run `bash .ci/setup` first")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", CMAKE_CXX_COMPILER_LAUNCHER="ccache")
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            str(root),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    out = subprocess.run(
        [str(py), "-c", "import smartfunnel; print(smartfunnel.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert out.stdout.strip() == sf.__version__
    # The README's main job, and a report on a real export, from the fresh install's own command.
    command = env_dir / "bin" / "smartfunnel"
    runs = [["--sample", "-o", "sample.html"]]
    maven = root.parent / "shared" / "data" / "maven-crm-sales-opportunities"
    if maven.is_dir():  # the public datasets live beside the project (test_imports covers them)
        runs.append([str(maven), "-o", "maven.html"])
    for args in runs:
        run = subprocess.run(
            [str(command), "report", *args], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        assert run.returncode == 0, run.stderr
        assert "Forecast of revenue won" in run.stdout
        html = (tmp_path / args[-1]).read_text()
        assert html.startswith("<!DOCTYPE html>") and "<svg" in html


def test_stubs_cover_every_public_name_of_core():
    import pathlib
    import re as _re

    from smartfunnel import _core

    text = (pathlib.Path(sf.__file__).parent / "_core.pyi").read_text()
    # classes, functions and module attributes (``NAME: type``)
    found = _re.findall(r"^(?:(?:class|def) (\w+)|(\w+): )", text, flags=_re.M)
    declared = {a or b for a, b in found}
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert public <= declared, sorted(public - declared)
