"""Reading TensorBoard event files back in tests, without the tensorboard package."""
import struct

from tensorboardX.proto import event_pb2


def tensorboard_scalars(tb_dir) -> dict:
    """``{tag: [(step, value), ...] sorted by step}`` from the event files in ``tb_dir`` (TFRecord framing: an 8-byte length,
    its 4-byte CRC, the Event proto, its 4-byte CRC), read with tensorboardX's own Event proto."""
    out = {}
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return {tag: sorted(points) for tag, points in out.items()}
