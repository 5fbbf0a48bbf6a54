"""Messages to and from bytes (docs/PROTOCOL.md section 3).

Task arguments and result values are any msgpack value: None, bool, int
(-2**63 .. 2**64-1), float, str, bytes (msgpack bin), lists (tuples go as
lists), dicts, msgpack.ExtType. Strings that are not valid UTF-8 come and go
unchanged (surrogateescape), since the master does not check them.
"""
import msgpack

MAX_MESSAGE = 64 * 1024 * 1024  # PROTOCOL 1: largest message
MAX_FRAME = MAX_MESSAGE + 256   # ZMQ_MAXMSGSIZE
MAX_BATCH = 65536               # items in one put, items or result message
MAX_VALUE = 16 * 1024 * 1024    # one encoded task argument or result value
MAX_ERROR = 4096                # bytes of an error text

_ERRORS = "surrogateescape"


def encode(msg) -> bytes:
    """One message (a dict whose "op" names it) as one msgpack map."""
    try:
        return msgpack.packb(msg, use_bin_type=True, unicode_errors=_ERRORS)
    except OverflowError as e:
        raise ValueError(f"a task value holds an integer outside msgpack's range "
                         f"(-2**63 .. 2**64-1): {e}") from None
    except TypeError as e:
        raise TypeError(f"a task value holds something msgpack cannot carry ({e}); "
                        "use None, bool, int, float, str, bytes, list, tuple or dict") from None


def map_with_raw_field(fields: dict, key: str, encoded: bytes) -> bytes:
    """A message of fields plus key, whose value is already encoded: a large
    batch is encoded once, not once to measure and again to send."""
    packer = msgpack.Packer(use_bin_type=True, unicode_errors=_ERRORS)
    out = [packer.pack_map_header(len(fields) + 1)]
    for k, v in fields.items():
        out += (packer.pack(k), packer.pack(v))
    out += (packer.pack(key), encoded)
    return b"".join(out)


def value_size(value) -> int:
    """Encoded size of one task argument or result value."""
    return len(encode(value))


def decode(frame: bytes) -> dict:
    """A message from the master. Maps whose keys Python cannot hash (arrays)
    are decoded a second time with tuples for arrays."""
    # The frame is at most MAX_FRAME bytes (ZMQ_MAXMSGSIZE), and unpackb
    # bounds every length by the frame's size.
    kwargs = dict(raw=False, strict_map_key=False, unicode_errors=_ERRORS)
    try:
        try:
            msg = msgpack.unpackb(frame, **kwargs)
        except TypeError:
            msg = msgpack.unpackb(frame, use_list=False, **kwargs)
    except Exception as e:  # truncated, trailing bytes, too deep: msgpack's own errors
        raise ValueError(f"the master sent a frame that is not valid msgpack ({e})") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
        raise ValueError("the master sent a frame that is not a taskq message")
    return msg
