"""Drive the policy pack as the Pulumi engine does: start ``policies/__main__.py`` as its own
process, read the port it prints, and call the analyzer gRPC protocol."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mlwf.planned import PlannedResource

REPO = Path(__file__).resolve().parents[1]
LEVELS = {"advisory": 0, "mandatory": 1, "disabled": 2}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(values, struct)
    return struct


class Analyzer:
    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
        self.stub = stub

    def info(self) -> Any:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, config: dict[str, tuple[str, dict[str, Any]]]) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=_struct(props))
                for name, (level, props) in config.items()
            }
        )
        self.stub.Configure(request)

    def _provider(self, resource: PlannedResource, providers: dict[str, PlannedResource]) -> dict[str, Any]:
        provider = providers.get(resource.provider.rsplit("::", 1)[-1]) if resource.provider else None
        if provider is None:
            return {}
        return {
            "provider": analyzer_pb2.AnalyzerProviderResource(
                type=provider.type, properties=_struct(provider.inputs), urn=provider.urn, name=provider.name
            )
        }

    def analyze(self, resources: list[PlannedResource]) -> tuple[list[dict[str, str]], list[Any]]:
        """Analyze each resource, then the stack; returns (violations, all raw diagnostics)."""
        providers = {r.id: r for r in resources if r.type.startswith("pulumi:providers:")}
        diagnostics = []
        found: list[tuple[str, Any]] = []  # (the urn the engine attributes it to, diagnostic)
        for r in resources:
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name, **self._provider(r, providers)
            )
            answer = self.stub.Analyze(request).diagnostics
            diagnostics.extend(answer)
            found.extend((d.urn or r.urn, d) for d in answer)
        stack = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=_struct(r.inputs),
                    urn=r.urn,
                    name=r.name,
                    dependencies=[resources[i].urn for i in r.dependencies],
                    **self._provider(r, providers),
                )
                for r in resources
            ]
        )
        answer = self.stub.AnalyzeStack(stack).diagnostics
        diagnostics.extend(answer)
        found.extend((d.urn, d) for d in answer)
        violations = [
            {
                "policy": d.policyName,
                "level": LEVEL_NAMES[d.enforcementLevel],
                "resource": urn,
                # The pack prefixes each message with the rule's description (the engine shows both).
                "message": d.message.removeprefix(f"{d.description}\n"),
            }
            for urn, d in found
            if "during preview" not in d.message
        ]
        return sorted(violations, key=lambda v: (v["policy"], v["resource"], v["message"])), diagnostics


@contextmanager
def policy_pack_process() -> Iterator[Analyzer]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "policies" / "__main__.py")],
        cwd=REPO / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().decode().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield Analyzer(analyzer_pb2_grpc.AnalyzerStub(channel))
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
