"""The CrossGuard pack `pulumi preview/up --policy-pack policies` loads: builds it and serves."""

from mlwf.policy.pack import build_pack

build_pack()
