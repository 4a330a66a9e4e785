"""The videos of ``rlsweep eval``: ``episode-<k>.mp4``, H.264 in an MP4 that browsers and W&B play.

The frames are the ones the agent sees (the newest frame of each observation, grey where the env is grey), one per
agent step, collected by :func:`rlsweep.evaluation.playing.play`: no backend here renders a separate RGB picture
cheaply. They are a few dozen pixels a side, so :func:`write_video` scales them up by whole pixels (no blur) until
they are watchable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

VIDEO_SIDE = 256  # frames are scaled up by a whole factor until their longer side is at least this many pixels
# What the frames are, for eval.json (Evaluation.frames): whoever opens it alone learns what the video shows.
FRAMES = (
    "the observation's newest frame (what the agent sees: the env's resized frame, grey where the env "
    "is grey), scaled up by whole pixels; one frame per agent step"
)


def write_video(path: Path, frames: Sequence[np.ndarray], channels: int, fps: int) -> int:
    """Write ``frames`` ((H, W, 1) grey or (H, W, 3) RGB uint8) as a browser-playable H.264 MP4 (yuv420p,
    moov atom first); returns the whole-pixel scale factor used."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    scale = max(1, math.ceil(VIDEO_SIDE / max(h, w)))
    # yuv420p needs even sides: one more pixel of scale where a side would be odd.
    if (h * scale) % 2 or (w * scale) % 2:
        scale += 1
    # Written under a temporary name and renamed: an interrupted eval leaves no truncated episode-<k>.mp4.
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp),
        (w * scale, h * scale),
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        fps=fps,
        codec="libx264",
        quality=8,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)  # start the generator (imageio-ffmpeg's protocol)
    try:
        for frame in frames:
            big = frame.repeat(scale, axis=0).repeat(scale, axis=1)
            rgb = np.repeat(big, 3, axis=-1) if channels == 1 else big
            writer.send(np.ascontiguousarray(rgb, dtype=np.uint8))
    finally:
        writer.close()
    tmp.replace(path)
    return scale
