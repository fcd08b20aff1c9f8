"""The protos are documented as googleapis' are: every field's comment says whether the caller must,
may or cannot set it, and every request message says what it asks (`buf lint` checks that the
comments exist; this checks how a field's comment starts)."""

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorSet
from grpc_tools import protoc

from devstack import protogen

FIELD_PREFIXES = ("Required.", "Optional.", "Output only.")
# Paths of SourceCodeInfo locations: FileDescriptorProto.message_type is field 4,
# DescriptorProto.field is 2 and DescriptorProto.nested_type is 3.
MESSAGE_TYPE, FIELD, NESTED_TYPE = 4, 2, 3


def _descriptors(root: Path, protos: list[Path], out: Path) -> FileDescriptorSet:
    well_known = resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(root)) for p in protos]
    args = [
        "protoc",
        f"-I{root}",
        f"-I{well_known}",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *files,
    ]
    assert protoc.main(args) == 0, f"protoc failed for {files}"
    return FileDescriptorSet.FromString(out.read_bytes())


def _messages(
    messages: list[DescriptorProto], scope: str, path: tuple[int, ...], kind: int
) -> Iterator[tuple[str, tuple[int, ...], DescriptorProto]]:
    """Every message (nested ones too, not map entries) with its full name and location path."""
    for index, message in enumerate(messages):
        if message.options.map_entry:
            continue
        name, location = f"{scope}.{message.name}", (*path, kind, index)
        yield name, location, message
        yield from _messages(list(message.nested_type), name, location, NESTED_TYPE)


def _offenders(descriptors: FileDescriptorSet) -> list[str]:
    offenders = []
    for proto in descriptors.file:
        comments = {
            tuple(location.path): location.leading_comments.strip()
            for location in proto.source_code_info.location
        }
        messages = _messages(list(proto.message_type), proto.package, (), MESSAGE_TYPE)
        for name, location, message in messages:
            if name.endswith("Request") and not comments.get(location):
                offenders.append(f"{proto.name}: message {name} has no leading comment")
            for index, field in enumerate(message.field):
                comment = comments.get((*location, FIELD, index), "")
                if not comment.startswith(FIELD_PREFIXES):
                    offenders.append(f"{proto.name}: field {name}.{field.name}: {comment[:60]!r}")
    return offenders


def test_every_field_says_required_optional_or_output_only(tmp_path: Path) -> None:
    descriptors = _descriptors(protogen.PROTO_ROOT, protogen.proto_files(), tmp_path / "protos.pb")
    assert sorted(f.name for f in descriptors.file) == [
        "billing/invoicing/v1/invoicing.proto",
        "billing/metering/v1/metering.proto",
        "billing/settlement/v1/settlement.proto",
    ]
    offenders = _offenders(descriptors)
    assert not offenders, (
        f"{len(offenders)} comments break the rule (a field's leading comment starts with "
        f"{', '.join(FIELD_PREFIXES)}; a request message has a leading comment):\n"
        + "\n".join(offenders)
    )


def test_the_check_names_every_offender(tmp_path: Path) -> None:
    proto = tmp_path / "bad.proto"
    proto.write_text(
        """syntax = "proto3";
package bad.v1;

message GetThingRequest {
  string id = 1;
}

// Request of ListThings.
message ListThingsRequest {
  // The page.
  int32 page_size = 1;
  // Optional. 0-1000.
  int32 page_number = 2;
  // A thing.
  message Filter {
    // Output only.
    string name = 1;
    map<string, string> labels = 2;
  }
}
"""
    )
    assert _offenders(_descriptors(tmp_path, [proto], tmp_path / "bad.pb")) == [
        "bad.proto: message bad.v1.GetThingRequest has no leading comment",
        "bad.proto: field bad.v1.GetThingRequest.id: ''",
        "bad.proto: field bad.v1.ListThingsRequest.page_size: 'The page.'",
        "bad.proto: field bad.v1.ListThingsRequest.Filter.labels: ''",
    ]
