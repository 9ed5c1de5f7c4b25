"""Draw the integration's brand icons: a cloud with a lightning bolt.

    .venv/bin/python scripts/make_icons.py

Writes custom_components/cloud_energy_meters/brand/icon.png (256×256) and
icon@2x.png (512×512): transparent background, drawn 4× larger and scaled down
for smooth edges. Home Assistant (2026.3+) serves them from the integration's
brand/ folder.
"""

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

BRAND = (
    Path(__file__).resolve().parent.parent
    / "custom_components"
    / "cloud_energy_meters"
    / "brand"
)
SUPERSAMPLE = 4
CLOUD_TOP = (0x4F, 0xC3, 0xF7)  # light sky blue
CLOUD_BOTTOM = (0x02, 0x77, 0xBD)  # deep blue
BOLT = (0xFF, 0xB3, 0x00)  # amber

# Cloud: three circles (cx, cy, r; in units of the canvas size) and the box
# between the two side lobes' centres down to their common bottom, which gives
# a flat base with round ends.
CLOUD_CIRCLES = (
    (0.30, 0.52, 0.17),
    (0.50, 0.40, 0.23),
    (0.70, 0.52, 0.17),
)
CLOUD_BASE = (0.30, 0.40, 0.70, 0.69)  # x0 y0 x1 y1
BOLT_POINTS = (
    (0.575, 0.36),
    (0.385, 0.63),
    (0.495, 0.63),
    (0.425, 0.92),
    (0.655, 0.56),
    (0.54, 0.56),
    (0.635, 0.36),
)


def draw(size: int) -> Image.Image:
    """Return the icon at size×size pixels."""
    big = size * SUPERSAMPLE

    def px(value: float) -> float:
        return value * big

    cloud = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(cloud)
    for cx, cy, r in CLOUD_CIRCLES:
        pen.ellipse((px(cx - r), px(cy - r), px(cx + r), px(cy + r)), fill=255)
    x0, y0, x1, y1 = CLOUD_BASE
    pen.rectangle((px(x0), px(y0), px(x1), px(y1)), fill=255)

    bolt = Image.new("L", (big, big), 0)
    ImageDraw.Draw(bolt).polygon([(px(x), px(y)) for x, y in BOLT_POINTS], fill=255)
    # A transparent gap around the bolt where it crosses the cloud.
    gap = bolt.filter(ImageFilter.MaxFilter(2 * round(px(0.018)) + 1))
    cloud = ImageChops.subtract(cloud, gap)

    # Vertical gradient for the cloud.
    gradient = Image.new("RGB", (1, big))
    top, bottom = px(0.17), px(0.69)
    for y in range(big):
        t = min(max((y - top) / (bottom - top), 0.0), 1.0)
        gradient.putpixel(
            (0, y),
            tuple(
                round(a + (b - a) * t)
                for a, b in zip(CLOUD_TOP, CLOUD_BOTTOM, strict=True)
            ),
        )
    gradient = gradient.resize((big, big))

    icon = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    icon.paste(gradient, (0, 0), cloud)
    icon.paste(Image.new("RGB", (big, big), BOLT), (0, 0), bolt)
    return icon.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    """Write both sizes."""
    BRAND.mkdir(parents=True, exist_ok=True)
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        path = BRAND / name
        draw(size).save(path, optimize=True)
        print(f"wrote {path} ({size}×{size})")


if __name__ == "__main__":
    main()
