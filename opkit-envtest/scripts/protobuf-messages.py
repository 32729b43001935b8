#!/usr/bin/env python3
"""Generates opkit-envtest/src/protobuf/messages.rs: the protobuf field numbers,
JSON names and types of the Kubernetes built-in kinds, read from the Go types of
k8s.io/api and k8s.io/apimachinery (their `json` and `protobuf` struct tags).

Usage: protobuf-messages.py API_DIR APIMACHINERY_DIR > src/protobuf/messages.rs
where the directories are checkouts of kubernetes/api and kubernetes/apimachinery
at the release the server imitates (v0.35.x for Kubernetes 1.35).
"""

import os
import re
import sys

# Go package directories read, as (import path, directory below the checkout,
# API group). The group is None for packages without kinds of their own.
API_PACKAGES = [
    ("core/v1", ""),
    ("apps/v1", "apps"),
    ("batch/v1", "batch"),
    ("autoscaling/v1", "autoscaling"),
    ("autoscaling/v2", "autoscaling"),
    ("networking/v1", "networking.k8s.io"),
    ("policy/v1", "policy"),
    ("coordination/v1", "coordination.k8s.io"),
    ("events/v1", "events.k8s.io"),
    ("rbac/v1", "rbac.authorization.k8s.io"),
    ("admissionregistration/v1", "admissionregistration.k8s.io"),
    ("authentication/v1", "authentication.k8s.io"),
    ("authorization/v1", "authorization.k8s.io"),
    ("certificates/v1", "certificates.k8s.io"),
    ("discovery/v1", "discovery.k8s.io"),
    ("storage/v1", "storage.k8s.io"),
    ("scheduling/v1", "scheduling.k8s.io"),
    ("node/v1", "node.k8s.io"),
]
META = "meta/v1"

# Types with a wire form of their own, and what the decoder does with them.
SPECIAL = {
    "meta/v1.Time": "Time",
    "meta/v1.MicroTime": "MicroTime",
    "meta/v1.FieldsV1": "Raw",
    "runtime.RawExtension": "Raw",
    "resource.Quantity": "Quantity",
    "intstr.IntOrString": "IntOrString",
}

IMPORTS = {
    "k8s.io/apimachinery/pkg/apis/meta/v1": "meta/v1",
    "k8s.io/apimachinery/pkg/api/resource": "resource",
    "k8s.io/apimachinery/pkg/util/intstr": "intstr",
    "k8s.io/apimachinery/pkg/runtime": "runtime",
    "k8s.io/apimachinery/pkg/types": "types",
}

STRUCT = re.compile(r"^type (\w+) struct \{$")
ALIAS = re.compile(r"^type (\w+) (\S+)$")
FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([\w\.\*\[\]]+)\s+`([^`]*)`")


def tag(tags, key):
    m = re.search(key + r':"([^"]*)"', tags)
    return m.group(1) if m else None


def read_package(path, package):
    structs, aliases, imports = {}, {}, {}
    for name in sorted(os.listdir(path)):
        if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_"):
            continue
        if name.startswith("generated"):
            continue
        lines = open(os.path.join(path, name)).read().split("\n")
        for line in lines:
            m = re.match(r'^\s*(\w+)?\s*"(k8s\.io/[^"]+)"$', line)
            if m:
                full = m.group(2)
                alias = m.group(1) or full.rsplit("/", 1)[-1]
                if full.startswith("k8s.io/api/"):
                    imports[alias] = full[len("k8s.io/api/"):]
                elif full in IMPORTS:
                    imports[alias] = IMPORTS[full]
        current = None
        for line in lines:
            m = STRUCT.match(line)
            if m:
                current = m.group(1)
                structs[current] = []
                continue
            if current is not None:
                if line == "}":
                    current = None
                    continue
                f = FIELD.match(line)
                if f and not line.strip().startswith("//"):
                    structs[current].append((f.group(1), f.group(2), f.group(3)))
                continue
            m = ALIAS.match(line)
            if m and not m.group(2).startswith("="):
                aliases[m.group(1)] = m.group(2)
    return structs, aliases, imports


def main(api_dir, machinery_dir):
    packages = {}
    for package, _ in API_PACKAGES:
        packages[package] = read_package(os.path.join(api_dir, package), package)
    packages[META] = read_package(os.path.join(machinery_dir, "pkg/apis/meta/v1"), META)

    def qualify(package, name):
        if "." in name:
            prefix, rest = name.split(".", 1)
            return packages[package][2].get(prefix, prefix) + "." + rest
        return package + "." + name

    def resolve(package, go_type):
        """(kind, keep_zero) of a Go type: kind is the decoder's description."""
        pointer = go_type.startswith("*")
        t = go_type.lstrip("*")
        if t.startswith("[]"):
            inner = t[2:]
            if inner == "byte":
                return "Bytes", pointer
            kind, _ = resolve(package, inner)
            return f"Rep(&{kind})", False
        if t.startswith("map["):
            key, value = re.match(r"map\[([\w\.]+)\](.+)", t).groups()
            kind, _ = resolve(package, value)
            # A map of string lists carries each list in a message of its own.
            if kind == "Rep(&Str)":
                kind = "Strings"
            return f"Map(&{kind})", False
        if t in ("string",):
            return "Str", pointer
        if t in ("int32", "int64", "int", "uint32", "uint64", "int16"):
            return "Int", pointer
        if t == "bool":
            return "Bool", pointer
        if t == "byte":
            return "Int", pointer
        q = qualify(package, t)
        if q in SPECIAL:
            return SPECIAL[q], pointer
        if q == "types.UID" or q == "types.NodeName":
            return "Str", pointer
        owner, name = q.rsplit(".", 1)
        if owner in packages:
            structs, aliases, _ = packages[owner]
            if name in structs:
                return f'Msg("{q}")', pointer
            if name in aliases:
                kind, keep = resolve(owner, aliases[name])
                return kind, keep or pointer
        raise SystemExit(f"unknown type {go_type} ({q}) in {package}")

    messages = {}
    kinds = []
    for package, (structs, aliases, _) in packages.items():
        group = dict(API_PACKAGES).get(package)
        version = package.split("/")[1]
        for name, fields in structs.items():
            entries = []
            is_kind = False
            for field_name, go_type, tags in fields:
                if field_name is None and go_type.endswith("TypeMeta"):
                    is_kind = True
                proto = tag(tags, "protobuf")
                json_tag = tag(tags, "json")
                if proto is None or json_tag is None or json_tag == "-":
                    continue
                number = int(proto.split(",")[1])
                json_name, *options = json_tag.split(",")
                kind, keep = resolve(package, go_type)
                inline = "inline" in options or (field_name is None and json_name == "")
                if inline:
                    if not kind.startswith("Msg("):
                        raise SystemExit(f"inline {go_type} in {package}.{name}")
                    kind = "Inline(" + kind[4:]
                keep = keep or "omitempty" not in options
                entries.append((number, json_name, kind, keep))
            messages[f"{package}.{name}"] = entries
            if is_kind and group is not None:
                kinds.append((group, version, name, f"{package}.{name}"))
    # Only what the kinds and the meta types reach is kept.
    roots = [m for _, _, _, m in kinds] + [f"{META}.DeleteOptions"]
    keep, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m in keep or m not in messages:
            continue
        keep.add(m)
        for _, _, kind, _ in messages[m]:
            ref = re.search(r'"([^"]+)"', kind)
            if ref:
                todo.append(ref.group(1))
    out = sys.stdout
    out.write("//! Generated by `opkit-envtest/scripts/protobuf-messages.py` from the Go types of\n")
    out.write("//! k8s.io/api and k8s.io/apimachinery v0.35: do not edit by hand.\n\n")
    out.write("use super::Kind::{self, *};\n\n")
    out.write("/// `(number, JSON name, kind, keep zero values)` of one message's fields.\n")
    out.write("pub(super) type Fields = &'static [(u32, &'static str, Kind, bool)];\n\n")
    out.write("/// Every message, sorted by name for binary search.\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) const MESSAGES: &[(&str, Fields)] = &[\n")
    for m in sorted(keep):
        fields = ", ".join(
            f'({n}, "{j}", {k}, {"true" if z else "false"})' for n, j, k, z in messages[m]
        )
        out.write(f'    ("{m}", &[{fields}]),\n')
    out.write("];\n\n")
    out.write("/// `(group, version, kind, message)` of every top-level kind.\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) const KINDS: &[(&str, &str, &str, &str)] = &[\n")
    for group, version, name, m in sorted(kinds):
        out.write(f'    ("{group}", "{version}", "{name}", "{m}"),\n')
    out.write("];\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
