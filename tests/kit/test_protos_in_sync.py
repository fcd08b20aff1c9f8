"""The committed stubs in `billing/` are exactly what the .proto files generate."""

from pathlib import Path

from devstack import protogen


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    generated = protogen.generate(tmp_path)
    committed = protogen.generated_files(protogen.REPO_ROOT)
    assert [p.relative_to(tmp_path) for p in generated] == [
        p.relative_to(protogen.REPO_ROOT) for p in committed
    ]
    for fresh, kept in zip(generated, committed, strict=True):
        assert fresh.read_bytes() == kept.read_bytes(), f"{kept} is stale: run `make protos`"
