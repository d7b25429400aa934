"""Draws the integration's brand images: a house calling home through a tunnel to a server.

icon.png 256x256 and icon@2x.png 512x512 (square); logo.png and logo@2x.png the same mark.
Run once; the images are committed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = Path(__file__).resolve().parents[1] / "custom_components" / "ssh_callhome" / "brand"
BLUE = (3, 169, 244, 255)
DARK = (16, 45, 72, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int) -> Image.Image:
    """The mark at `size` pixels, drawn at 4x and scaled down for smooth edges."""
    big = size * 4
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    unit = big / 64
    pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=12 * unit, fill=DARK)
    # The house, on the left.
    pen.polygon([(6 * unit, 30 * unit), (18 * unit, 18 * unit), (30 * unit, 30 * unit)], fill=BLUE)
    pen.rectangle((10 * unit, 30 * unit, 26 * unit, 46 * unit), fill=BLUE)
    pen.rectangle((16 * unit, 36 * unit, 20 * unit, 46 * unit), fill=DARK)
    # The server, on the right.
    for row in (18, 29, 40):
        pen.rounded_rectangle(
            (40 * unit, row * unit, 58 * unit, (row + 8) * unit), radius=2 * unit, fill=WHITE
        )
        pen.ellipse((53 * unit, (row + 3) * unit, 55 * unit, (row + 5) * unit), fill=BLUE)
    # The tunnel between them: a dashed arc from the house up and over to the server.
    pen.arc((16 * unit, 6 * unit, 50 * unit, 30 * unit), 190, 350, fill=WHITE, width=int(3 * unit))
    pen.polygon(
        [(46 * unit, 14 * unit), (52 * unit, 17 * unit), (45 * unit, 20 * unit)], fill=WHITE
    )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    """Write the four images."""
    BRAND.mkdir(parents=True, exist_ok=True)
    for name in ("icon", "logo"):
        draw(256).save(BRAND / f"{name}.png")
        draw(512).save(BRAND / f"{name}@2x.png")


if __name__ == "__main__":
    main()
