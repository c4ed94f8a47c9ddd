"""Drawing block maps over the input image: the geometry from a feature grid back to the image, colour maps, region
palettes and query markers (OpenCV only)."""
import cv2
import numpy as np
import torch

# BGR colours of regions (label i gets PALETTE[i % len(PALETTE)]).
PALETTE = np.array([
    (75, 25, 230), (75, 180, 60), (25, 225, 255), (200, 130, 0), (48, 130, 245), (180, 30, 145), (240, 240, 70),
    (230, 50, 240), (60, 245, 210), (212, 190, 250), (128, 128, 0), (255, 190, 220), (40, 110, 170), (200, 250, 255),
    (0, 0, 128), (195, 255, 170), (0, 128, 128), (180, 215, 255), (128, 0, 0), (128, 128, 128)], dtype=np.uint8)


class ImageGeometry:
    """How the network input relates to the original image: resized to ``img_shape`` by the test pipeline, padded to
    ``pad_shape`` by the data preprocessor; a block's H x W grid covers the padded input."""

    def __init__(self, ori_shape, img_shape, pad_shape):
        self.ori_shape = tuple(int(v) for v in ori_shape[:2])
        self.img_shape = tuple(int(v) for v in img_shape[:2])
        self.pad_shape = tuple(int(v) for v in pad_shape[:2])

    def to_image(self, grid_map, nearest=False):
        """A (h, w) map on a feature grid -> (H0, W0) float32 array on the original image."""
        array = grid_map.detach().float().cpu().numpy() if isinstance(grid_map, torch.Tensor) else grid_map
        array = np.ascontiguousarray(array, dtype=np.float32)
        interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        (ph, pw), (ih, iw), (oh, ow) = self.pad_shape, self.img_shape, self.ori_shape
        padded = cv2.resize(array, (pw, ph), interpolation=interp)
        return cv2.resize(padded[:ih, :iw], (ow, oh), interpolation=interp)

    def point_to_grid(self, point, grid_shape):
        """(y, x) pixel of the original image -> (y, x) cell of an h x w grid."""
        (oh, ow), (ih, iw), (ph, pw) = self.ori_shape, self.img_shape, self.pad_shape
        y, x = point
        if not (0 <= y < oh and 0 <= x < ow):
            raise ValueError(f'point (y={y}, x={x}) lies outside the {oh} x {ow} image')
        h, w = grid_shape
        gy = int(y * ih / oh * h / ph)
        gx = int(x * iw / ow * w / pw)
        return min(gy, h - 1), min(gx, w - 1)

    def grid_to_point(self, cell, grid_shape):
        """(y, x) cell of an h x w grid -> its centre as an (x, y) pixel of the original image (OpenCV order)."""
        (oh, ow), (ih, iw), (ph, pw) = self.ori_shape, self.img_shape, self.pad_shape
        h, w = grid_shape
        y = (cell[0] + 0.5) * ph / h * oh / ih
        x = (cell[1] + 0.5) * pw / w * ow / iw
        return int(round(min(x, ow - 1))), int(round(min(y, oh - 1)))


def overlay_heatmap(image, heat, alpha=0.5, mask=None):
    """Colour map (JET, min-max normalised) of a float (H, W) map blended over a BGR uint8 image of the same size;
    where ``mask`` is given, only its True pixels are coloured."""
    if heat.shape != image.shape[:2]:
        raise ValueError(f'overlay_heatmap: map shape {heat.shape} differs from the image shape {image.shape[:2]}')
    low, high = float(heat.min()), float(heat.max())
    scaled = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    colour = cv2.applyColorMap(np.uint8(np.round(scaled * 255)), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
    if mask is not None:
        blended = np.where(mask[..., None], blended, image)
    return blended


def overlay_labels(image, labels, alpha=0.5):
    """Integer (H, W) labels coloured with ``PALETTE`` blended over a BGR uint8 image of the same size."""
    if labels.shape != image.shape[:2]:
        raise ValueError(f'overlay_labels: label shape {labels.shape} differs from the image shape {image.shape[:2]}')
    colour = PALETTE[np.asarray(labels, dtype=np.int64) % len(PALETTE)]
    return cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)


def draw_point(image, xy):
    """A query marker (white cross on a black outline) at pixel (x, y)."""
    size = max(6, min(image.shape[:2]) // 16)
    cv2.drawMarker(image, xy, (0, 0, 0), cv2.MARKER_CROSS, size + 2, 3)
    cv2.drawMarker(image, xy, (255, 255, 255), cv2.MARKER_CROSS, size, 1)
    return image
