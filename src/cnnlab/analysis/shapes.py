"""Input shapes as people type and read them: '3x224x224' in, '3×224×224' (or H×W×C) out.

No torch here, so `cnnlab calc` and the command line's argument checks stay instant.
"""

from __future__ import annotations

from cnnlab.errors import CnnlabError

LAYOUTS = ("chw", "hwc")


def parse_shape(text: str) -> tuple[int, int, int]:
    """'3x224x224', '3×224×224' or '3,224,224' → (3, 224, 224): exactly channels, height, width."""
    parts = str(text).replace("×", "x").replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise CnnlabError(f"bad input shape '{text}': write three positive whole numbers, "
                          "channels x height x width, e.g. 3x224x224")
    return shape


def shape_text(shape, layout: str = "chw") -> str:
    """C×H×W, or H×W×C as the lecture tables write it; other ranks as they are."""
    shape = tuple(shape)
    if layout == "hwc" and len(shape) >= 2:
        shape = (*shape[1:], shape[0])
    return "×".join(str(s) for s in shape)


def layout_text(layout: str) -> str:
    return "H×W×C" if layout == "hwc" else "C×H×W"


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise CnnlabError(f"unknown layout '{layout}': choose one of {', '.join(LAYOUTS)}")
