"""Policy deployments that swap links, as hot reload meets them in the field."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def configmap(root: Path, version: str, text: str) -> Path:
    """Lay out (or update) a policy as the kubelet's atomic writer does for a ConfigMap key:
    `policy.yaml -> ..data/policy.yaml`, `..data -> ..<version>`, swapped by a rename."""
    data = root / f"..{version}"
    data.mkdir()
    (data / "policy.yaml").write_text(text)
    os.symlink(data.name, root / "..data_tmp")
    old = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    os.replace(root / "..data_tmp", root / "..data")
    if not (root / "policy.yaml").is_symlink():
        os.symlink("..data/policy.yaml", root / "policy.yaml")
    if old is not None:
        shutil.rmtree(root / old)
    return root / "policy.yaml"


def ln_sfn(root: Path, version: str, text: str) -> Path:
    """Lay out (or update) `policy.yaml -> <version>.yaml` with the real `ln -sfn`."""
    (root / f"{version}.yaml").write_text(text)
    subprocess.run(["ln", "-sfn", f"{version}.yaml", "policy.yaml"], cwd=root, check=True)
    return root / "policy.yaml"
