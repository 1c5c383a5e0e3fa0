"""An image pulled by digest, as ``images`` and ``inspect`` show it (Docker 20.10's CLI
formatter): ``REPO <none>`` with the digest under ``--digests``, never ``<none> <none>``;
a tag of the same repository takes the digest into its row; removing a repository's last tag
removes its digests too. Against a real registry on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from pdcli import Pydock
from registryfix import REGISTRY_BIN

pytestmark = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry absent")


def rows(pd: Pydock, *args: str) -> list[list[str]]:
    return [re.split(r" {2,}", ln.strip()) for ln in pd.out("images", *args).splitlines()[1:]]


def test_pulled_by_digest_lists_its_repository(pd: Pydock, registry) -> None:
    repo = f"{registry.host}/bb"
    iid = pd.out("image", "inspect", "-f", "{{.Id}}", "busybox").strip()
    pd.out("tag", "busybox", f"{repo}:v1")
    out = pd.out("push", f"{repo}:v1")
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", out).group(1)
    pd.out("rmi", f"{repo}:v1", "busybox")
    assert pd.out("images", "-q") == ""
    pd.out("pull", f"{repo}@{digest}")

    assert [r[:3] for r in rows(pd)] == [[repo, "<none>", iid[7:19]]]
    assert rows(pd, "--digests")[0][:4] == [repo, "<none>", digest, iid[7:19]]
    fmt = "{{.Repository}}|{{.Tag}}|{{.Digest}}"
    assert pd.out("images", "--digests", "--format", fmt).split() == [f"{repo}|<none>|{digest}"]
    info = json.loads(pd.out("image", "inspect", iid))[0]
    assert info["RepoTags"] == [] and info["RepoDigests"] == [f"{repo}@{digest}"]
    # only digests: Docker counts it as dangling, and a reference filter sees the digest
    assert pd.out("images", "-q", "-f", "dangling=true").split() == [iid[7:19]]
    assert pd.out("images", "-q", "-f", "reference=*/bb").split() == [iid[7:19]]
    assert pd.out("images", "-q", "-f", "reference=*/other").split() == []

    # a tag in the same repository shows the digest on its own row
    pd.out("tag", f"{repo}@{digest}", f"{repo}:v2")
    pd.out("tag", f"{repo}:v2", "mine:1")
    assert sorted(r[:3] for r in rows(pd, "--digests")) == [
        [repo, "v2", digest], ["mine", "1", "<none>"]
    ]  # fmt: skip
    assert sorted(r[:2] for r in rows(pd)) == [[repo, "v2"], ["mine", "1"]]

    # untagging the repository's last tag takes its digest along (the image stays: mine:1)
    assert pd.out("rmi", f"{repo}:v2").splitlines() == [
        f"Untagged: {repo}:v2", f"Untagged: {repo}@{digest}"
    ]  # fmt: skip
    info = json.loads(pd.out("image", "inspect", iid))[0]
    assert info["RepoTags"] == ["mine:1"] and info["RepoDigests"] == []
    assert pd("image", "inspect", f"{repo}@{digest}").returncode == 1
