"""The venv Azure ML's inference server runs from in tests/test_azure_deploy.py, with exactly the pip packages of the
online deployment's environment (online/conda.yml).

It cannot be the template's venv, where azure-ai-ml (through azure-monitor-opentelemetry) needs opentelemetry-sdk
1.44 and azureml-inference-server-http 1.5.1 pins opentelemetry-sdk 1.33. `make test` builds it before the tests
run (``python tests/online_venv.py``, with the template venv's uv), since tests never touch the network; it is kept
under build/venvs/, one per set of pins, and built again only when the pins change.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
DEPLOYMENT_CONDA = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "online" / "conda.yml"


def pip_pins(conda_file: Path) -> list[str]:
    dependencies = yaml.safe_load(conda_file.read_text())["dependencies"]
    return next(item["pip"] for item in dependencies if isinstance(item, dict))


def venv_for(pins: list[str]) -> Path:
    key = hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:12]
    return TEMPLATE_DIR / "build" / "venvs" / f"online-{key}"


def build(pins: list[str]) -> Path:
    """The venv for ``pins``, made unless it is there (needs PyPI, or uv's cache)."""
    venv = venv_for(pins)
    if not (venv / ".installed").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        uv = [str(Path(sys.executable).with_name("uv")), "pip", "install", "--quiet", "--compile-bytecode"]
        subprocess.run([*uv, "--python", str(venv / "bin" / "python"), *pins], check=True)
        (venv / ".installed").touch()
    return venv


if __name__ == "__main__":
    print(build(pip_pins(DEPLOYMENT_CONDA)))
