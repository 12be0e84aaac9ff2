"""Compiles the fused Triton kernels for a GPU architecture without a GPU, as ``--fused`` launches them.

Triton compiles ahead of time for any target, so this catches compile errors before any GPU time is spent
and shows what each kernel costs the GPU: registers per thread, spills to local memory, shared memory.
It records the launches of one fused forward (run in Triton's interpreter on a small CPU image; the
kernels see the same types, constants and pointer alignments at any size) and compiles each distinct one,
telling Triton which pointers are 16-byte aligned as a launch on a GPU does: without that it cannot use
vector loads. The SASS shows how each kernel reads global memory (loads by width in bits; LDGSTS copies
straight into shared memory) and how many tensor-core instructions it has.

    python benchmarks/compile_triton_kernels.py                  # sm_90 (H100, H200), fp32 and fp16
    python benchmarks/compile_triton_kernels.py --arch 80 --precisions bf16
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from recnet_cli.devices import DTYPES

TRITON_TYPES = {dtype: name for name, dtype in DTYPES.items()}  # the same names as Triton's


Launch = tuple[str, dict[str, str], dict[str, object], list[int]]


def record_launches(precision: str) -> list[Launch]:
    """(kernel name, signature, constants, indices of the arguments that are multiples of 16: pointers
    aligned to 16 bytes, integers Triton specialises on) of each kernel launch in one fused forward."""
    from recnet_cli.model import fast, triton_stages
    from recnet_cli.weights import load_model

    launches = []

    class Recorder:
        def __init__(self, name: str, kernel: object) -> None:
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid: object) -> object:
            def launch(*args: object, num_warps: int, **constants: object) -> None:
                names = list(self.kernel.arg_names)
                signature = {name: argument_type(value) for name, value in zip(names, args, strict=False)}
                signature.update({name: "constexpr" for name in constants})
                aligned = [
                    index for index, value in enumerate(args) if divisible_by_16(self.kernel, index, value)
                ]
                launches.append((self.name, signature, {**constants, "num_warps": num_warps}, aligned))
                self.kernel[grid](*args, num_warps=num_warps, **constants)

            return launch

    for name in [name for name in vars(triton_stages) if name.endswith("_kernel")]:
        setattr(triton_stages, name, Recorder(name, getattr(triton_stages, name)))
    model = load_model(None).model.eval()
    image = torch.rand(1, 3, 24, 20, dtype=DTYPES[precision])
    fast.fast_forward(model, image, triton_stages.STAGES)
    return launches


def divisible_by_16(kernel: object, index: int, value: object) -> bool:
    """Whether Triton, launching ``kernel`` (as the interpreter holds it), tells the compiler that
    argument ``index`` (a pointer, or an integer it specialises on) is a multiple of 16 (bytes for
    pointers)."""
    if isinstance(value, torch.Tensor):
        return value.data_ptr() % 16 == 0
    unspecialised = kernel.arg_names[index] in (kernel.kwargs.get("do_not_specialize") or ())
    return isinstance(value, int) and not isinstance(value, bool) and not unspecialised and value % 16 == 0


def argument_type(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"*{TRITON_TYPES[value.dtype]}"
    if isinstance(value, float):
        return "fp32"
    return "i32"


def compile_launches(
    launches: list[Launch],
    arch: int,
    blocks: list[int] | None,
    warps: list[int] | None,
) -> None:
    """Compiles each distinct launch for sm_<arch>, at each BLOCK and warp count (by default as launched),
    and prints its resources."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from recnet_cli.model import triton_stages

    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    seen = set()
    columns = "| kernel | constants | types | BLOCK | warps | compile s | global loads | MMA | registers "
    print(columns + "| spill bytes | shared B |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, signature, recorded, aligned in launches:
        key = (name, tuple(signature.items()), tuple(recorded.items()), tuple(aligned))
        if key in seen:
            continue
        seen.add(key)
        constants = {key: value for key, value in recorded.items() if key not in ("BLOCK", "num_warps")}
        types = ", ".join(sorted({kind[1:] for kind in signature.values() if kind.startswith("*")}))
        for block in blocks or [recorded["BLOCK"]]:
            for num_warps in warps or [recorded["num_warps"]]:
                start = time.perf_counter()
                source = ASTSource(
                    fn=getattr(triton_stages, name),
                    signature=signature,
                    constexprs={**constants, "BLOCK": block},
                    attrs={(index,): [["tt.divisibility", 16]] for index in aligned},
                )
                target = GPUTarget("cuda", arch, 32)
                compiled = triton.compile(source, target=target, options={"num_warps": num_warps})
                seconds = time.perf_counter() - start
                usage = resource_usage(tools / "cuobjdump", compiled.asm["cubin"])
                loads, products = sass_summary(tools / "cuobjdump", compiled.asm["cubin"])
                cells = (name, constants, types, block, num_warps, f"{seconds:.1f}", loads, products)
                cells += (usage["REG"], usage["LOCAL"], usage["SHARED"])
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)


def cuobjdump_output(cuobjdump: Path, cubin: bytes, option: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        return subprocess.run(
            [str(cuobjdump), option, file.name], capture_output=True, text=True, check=True
        ).stdout


def resource_usage(cuobjdump: Path, cubin: bytes) -> dict[str, str]:
    """cuobjdump's resource line of a one-kernel cubin: REG, LOCAL (spill bytes), SHARED, ..."""
    usage = cuobjdump_output(cuobjdump, cubin, "-res-usage")
    line = next(line for line in usage.splitlines() if "REG:" in line)
    return dict(item.split(":", 1) for item in line.split())


def sass_summary(cuobjdump: Path, cubin: bytes) -> tuple[str, int]:
    """The global loads in a cubin's SASS by instruction and width in bits (``LDG.128 x2, LDG.16 x8``),
    and its count of tensor-core instructions (HMMA, HGMMA)."""
    sass = cuobjdump_output(cuobjdump, cubin, "-sass")
    loads = Counter()
    for opcode, modifiers in re.findall(r"\b(LDGSTS|LDG)((?:\.[A-Z0-9]+)*)", sass):
        widths = [m for m in modifiers.split(".") if m.lstrip("USNI").isdigit()]
        loads[f"{opcode}.{widths[-1].lstrip('USNI') if widths else '32'}"] += 1
    text = ", ".join(f"{kind} x{count}" for kind, count in sorted(loads.items()))
    return text, len(re.findall(r"\bH(?:G)?MMA\b", sass))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90 = H100, H200)")
    parser.add_argument("--precisions", default="fp32,fp16")
    parser.add_argument(
        "--blocks", help="pixels per program to compile for, e.g. 64,128,256 (default: as run)"
    )
    parser.add_argument("--warps", help="warps per program to compile for, e.g. 4,8 (default: as run)")
    parser.add_argument("--record", help=argparse.SUPPRESS)  # internal: record in the interpreter
    args = parser.parse_args()
    if args.record:
        print(repr(record_launches(args.record)))
        return
    # Recording runs the kernels in the interpreter, compiling needs real JIT functions: two processes.
    launches = []
    environment = {**os.environ, "TRITON_INTERPRET": "1"}
    for precision in args.precisions.split(","):
        recorded = subprocess.run(
            [sys.executable, __file__, "--record", precision], env=environment, capture_output=True, text=True
        )
        if recorded.returncode:
            sys.exit(recorded.stderr)
        launches += eval(recorded.stdout.strip().splitlines()[-1])  # our own repr of plain values
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    print(f"# The fused kernels compiled for sm_{args.arch}\n")
    blocks, warps = (
        [int(x) for x in option.split(",")] if option else None for option in (args.blocks, args.warps)
    )
    compile_launches(launches, args.arch, blocks, warps)


if __name__ == "__main__":
    main()
